//! One module per subcommand.

pub mod backends;
pub mod cv;
pub mod importance;
pub mod info;
pub mod models;
pub mod predict;
pub mod train;
