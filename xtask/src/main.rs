//! hebb's project automation (the xtask pattern): `cargo xtask reproduce ch12`
//! runs chapter 12 of the lecture end to end on the real Iris data, prints
//! its tables and writes its figures.

mod ch12;
mod plot;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

/// hebb's tasks.
#[derive(Parser)]
#[command(name = "cargo xtask", about = "hebb's project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reproduce a chapter of the lecture: prints its tables, writes its plots.
    Reproduce(ReproduceArgs),
}

/// Options of `cargo xtask reproduce`.
#[derive(Args, Debug, Clone)]
pub(crate) struct ReproduceArgs {
    /// The chapter: `ch12`.
    chapter: String,
    /// Run one section only, e.g. `12.2`.
    #[arg(long)]
    section: Option<String>,
    /// NumPy seed for the initial weights (`np.random.seed`).
    #[arg(long, default_value_t = 612)]
    seed: u32,
    /// Learning rate of the gradient-descent loops (12.2, 12.6).
    #[arg(long, default_value_t = 0.5)]
    lr: f32,
    /// Iterations: the loops run i = 0..=iters.
    #[arg(long, default_value_t = 50)]
    iters: usize,
    /// Hidden units of the 12.6 network.
    #[arg(long, default_value_t = 16)]
    hidden: usize,
    /// Print every n-th iteration.
    #[arg(long, default_value_t = 10)]
    display_step: usize,
    /// Data directory (default: $HEBB_DATA_DIR, else datasets/cache, downloading what is missing).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where figures go (default: `target/reproduce/CHAPTER`).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl ReproduceArgs {
    /// The output directory for figures.
    fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/reproduce")
                .join(&self.chapter)
        })
    }

    /// Whether section `id` (e.g. "12.2") is to run.
    fn wants(&self, id: &str) -> bool {
        self.section.as_deref().is_none_or(|s| s == id)
    }
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Reproduce(args) => match args.chapter.as_str() {
            "ch12" => ch12::run(&args),
            other => anyhow::bail!("unknown chapter {other:?}; available: ch12"),
        },
    }
}
