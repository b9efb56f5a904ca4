//! One module per subcommand.

pub mod cv;
pub mod info;
