// `sqlx::migrate!` embeds the migration files at compile time, but cargo does not know that
// they are inputs: without this, adding a migration leaves an incremental build with the old
// set (sqlx documents this build script for that reason).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
