//! Secrets that never show in logs or `Debug` output.
