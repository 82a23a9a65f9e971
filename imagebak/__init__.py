"""imagebak: scheduled VM images, copied to another region for cold disaster recovery.

Importing this package must stay cheap: no vendor SDK is imported here or by the CLI
until a command actually talks to a cloud.
"""

__version__ = "0.1.0"  # the only place the version is written (pyproject.toml reads it from here)
