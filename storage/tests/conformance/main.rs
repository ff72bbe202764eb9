//! The storage conformance suite: every test body is written once and runs on SQLite and, when
//! `GREENLIGHT_TEST_POSTGRES_URL` is set, on PostgreSQL.

mod support;

mod approvals;
mod audit;
mod decisions;
mod deliveries;
mod deployments;
mod dora;
mod flags_and_locks;
mod gates_and_cards;
mod migrations;
mod outbox;
mod releases;
mod replicas;
mod sqlite_only;
mod timeline;
mod views;
mod writes;
