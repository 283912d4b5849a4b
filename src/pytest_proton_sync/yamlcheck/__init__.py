"""Line-marked YAML and the wording of problems, shared by the manifest and the fake's state file.

May import model and text.
"""
