//! The migrations are embedded into the binary (`db::MIGRATIONS`): rebuild when they change,
//! which cargo cannot see through the `embed_migrations!` macro by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
