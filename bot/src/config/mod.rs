//! `greenlight.toml`: typed configuration, `${VAR}` interpolation and validation.
