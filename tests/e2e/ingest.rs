//! A file's whole life on SQLite: archived, transferred, ingested by a
//! stand-in IPAC that calls `/ingest_api` back, COMPLETE, its PI notified
//! ([`koa_dep_tests::ingest_loop`]; the databases suite runs it on MariaDB).

#[test]
fn a_file_is_archived_transferred_ingested_and_its_pi_notified() {
    koa_dep_tests::ingest_loop::whole_life(None);
}
