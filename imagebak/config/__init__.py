"""The policy file: YAML with positions (yamlsource), schema (pydantic), cross-entry rules, loader.

``from imagebak.config import load_config, LoadedConfig, validate_file, ...`` is the public way in;
the loader lives in ``loader.py``.
"""

from imagebak.config.loader import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    LoadedConfig,
    config_path,
    load_config,
    validate_file,
    validate_text,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "LoadedConfig",
    "config_path",
    "load_config",
    "validate_file",
    "validate_text",
]
