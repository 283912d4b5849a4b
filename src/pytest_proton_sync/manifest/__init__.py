"""The manifest: loading, schema and semantic checks, targets with their expectations.

May import model, kinds, yamlcheck, aws (answers' enums), text.
"""
