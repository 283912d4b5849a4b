"""Clients for the bundled fake that no setting of the user's environment can break or redirect.

``--proton-fake`` promises a run that needs no AWS configuration, so it must also survive whatever AWS
configuration a machine happens to have: ``AWS_PROFILE`` naming a profile that does not exist, a malformed
``~/.aws/config`` or credentials file, partial credentials in the environment, ``AWS_USE_FIPS_ENDPOINT``,
``HTTP_PROXY`` / ``ALL_PROXY``. The environment itself is never changed (a unit test running in the same
process sees it as the user set it); instead the botocore session made here consults none of it:

- every botocore configuration variable (profile, config and credentials file paths, region, retry and endpoint
  settings, ...) is pinned to botocore's own default, and the two file paths to a path that is no file, so no
  environment variable and no config file is read;
- credentials are explicit static ones (the fake accepts any signature), so the credential chain never runs;
- proxies are an explicit empty mapping, so botocore never asks ``urllib`` for ``*_PROXY`` variables.

Imports no pytest and no boto3 (a plain botocore session is all a client needs).
"""

from __future__ import annotations

import os
from typing import Any

import botocore.config
import botocore.configprovider
import botocore.session

FAKE_ACCESS_KEY_ID = "fake-access-key"
FAKE_SECRET_ACCESS_KEY = "fake-secret-key"
#: The region a fake client signs for when neither the entry nor --proton-region names one (the fake ignores it).
FAKE_DEFAULT_REGION = "us-east-1"

# Where the session looks for its config and credentials files: a path that is never a regular file, so
# botocore reads them as empty (ConfigNotFound) without looking at ~/.aws or AWS_CONFIG_FILE.
_NO_FILE = os.devnull
_FILE_VARIABLES = ("config_file", "credentials_file")
# Variables that are sections of the config file rather than single values.
_SECTION_VARIABLES = ("s3", "proxies_config")


def isolated_session() -> botocore.session.Session:
    """A botocore session whose every configuration variable is botocore's default, read from nowhere."""
    session = botocore.session.Session()
    store = session.get_component("config_store")
    for name, spec in botocore.configprovider.BOTOCORE_DEFAUT_SESSION_VARIABLES.items():
        value = _NO_FILE if name in _FILE_VARIABLES else spec[2]
        store.set_config_provider(name, botocore.configprovider.ConstantProvider(value))
    for name in _SECTION_VARIABLES:
        store.set_config_provider(name, botocore.configprovider.ConstantProvider(None))
    return session


def fake_client(service: str, region: str, endpoint_url: str, config: botocore.config.Config) -> Any:
    """A client of ``service`` that talks to ``endpoint_url`` directly, whatever the environment says."""
    # An explicit empty mapping (not None): botocore then skips its look-up of HTTP(S)_PROXY / ALL_PROXY.
    direct = config.merge(botocore.config.Config(proxies={}))
    return isolated_session().create_client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        config=direct,
    )
