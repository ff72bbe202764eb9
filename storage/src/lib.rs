//! Greenlight's storage: one `Storage` over SQLite or PostgreSQL.
