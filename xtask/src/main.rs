//! hebb's project automation (the xtask pattern): `cargo xtask reproduce ch12`
//! (and `ch13`) runs a chapter of the lecture end to end on the real data,
//! prints its tables and writes its figures; `cargo xtask bench mnist` times
//! the lecture's MNIST training; `cargo xtask model summary|evaluate PATH`
//! reads any model file hebb reads.

mod bench;
mod ch12;
mod ch13;
mod ex13;
mod model;
mod plot;

use std::path::PathBuf;

/// mimalloc keeps the large, short-lived buffers of a training step in
/// user space; the system allocator returns them to the kernel and pays a
/// page fault and a page clear for every reuse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

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
    /// Time a training job: `mnist` (the 13.5 fit).
    Bench(bench::BenchArgs),
    /// Model files (hebb, Keras .h5 and .keras): `summary PATH`, `evaluate PATH --dataset ...`.
    Model(model::ModelArgs),
    /// The new process of section 13.6 (started by `reproduce ch13`).
    #[command(hide = true, name = "ch13-child")]
    Ch13Child(ch13::ChildArgs),
}

/// Options of `cargo xtask reproduce`.
#[derive(Args, Debug, Clone)]
pub(crate) struct ReproduceArgs {
    /// The chapter: `ch12`, `ch13`, or `ex13` (the exercise of lecture 13).
    chapter: String,
    /// Run one section only, e.g. `12.2`, `12.3.2`, `13.5`.
    #[arg(long)]
    section: Option<String>,
    /// NumPy seed for the initial weights (`np.random.seed`).
    #[arg(long, default_value_t = 612)]
    seed: u32,
    /// Learning rate of the gradient-descent loops of 12.2 and 12.6.
    #[arg(long, default_value_t = 0.5, value_parser = finite_f32)]
    lr: f32,
    /// Iterations of the loops of 12.2 and 12.6: they run i = 0..=iters.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    iters: u32,
    /// Hidden units of the 12.6 network.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    hidden: u32,
    /// Epochs of the Sequential fits (default: the lecture's, 5 for MNIST).
    #[arg(long, value_parser = crate::at_least_one)]
    epochs: Option<usize>,
    /// Batch size of the Sequential fits (default: the lecture's, 64 for MNIST).
    #[arg(long, value_parser = crate::at_least_one)]
    batch_size: Option<usize>,
    /// Data set of 13.5: `mnist` or `fashion-mnist`.
    #[arg(long, default_value = "mnist", value_parser = ["mnist", "fashion-mnist"])]
    dataset: String,
    /// Train 13.5 on the first N training images only (a quick smoke run).
    #[arg(long, value_parser = crate::at_least_one)]
    subset: Option<usize>,
    /// Keras verbosity of the fits: 0 silent, 1 progress bar, 2 one line per epoch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    verbose: u8,
    /// Print every n-th iteration of the loops of 12.2 and 12.6.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    display_step: u32,
    /// Data directory (default: $HEBB_DATA_DIR, else datasets/cache, downloading what is missing).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where figures go (default: `target/reproduce/CHAPTER`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the networks train: `cpu`, `cuda` (or `gpu`) or `cuda:N` (GPUs need the
    /// xtask built with `--features cuda`: `cargo xtask-cuda ...`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// The device named by a `--device` flag; a GPU is checked to be there.
pub(crate) fn parse_device(name: &str) -> Result<hebb_tensor::Device> {
    name.parse::<hebb_tensor::Device>().map_err(|e| {
        let no_gpu = matches!(e, hebb_tensor::Error::NoCudaDevice { .. });
        let hint = if cfg!(feature = "cuda") || !no_gpu {
            ""
        } else {
            " (GPUs need the CUDA backend: run `cargo xtask-cuda ...` instead of `cargo xtask ...`)"
        };
        anyhow::anyhow!("--device {name}: {e}{hint}")
    })
}

/// A count of at least 1 (epochs, batch sizes, repeats).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A finite `f32` (rejects NaN and infinities, and values that overflow to them).
fn finite_f32(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number")),
        Err(e) => Err(e.to_string()),
    }
}

impl ReproduceArgs {
    /// The output directory for figures: `--out`, else `target/reproduce/<chapter>` in the workspace.
    fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let xtask = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let root = xtask.parent().map_or(xtask.clone(), PathBuf::from);
            root.join("target/reproduce").join(&self.chapter)
        })
    }

    /// Creates the output directory before any work, so a bad `--out` fails at once.
    fn prepare_out_dir(&self) -> Result<PathBuf> {
        let dir = self.out_dir();
        std::fs::create_dir_all(&dir)
            .and_then(|()| tempfile::tempfile_in(&dir).map(drop))
            .map_err(|e| {
                anyhow::anyhow!("--out {}: cannot write figures there: {e}", dir.display())
            })?;
        Ok(dir)
    }

    /// The `--device` to train on.
    pub(crate) fn device(&self) -> Result<hebb_tensor::Device> {
        parse_device(&self.device)
    }

    /// Whether section `id` (e.g. "12.2") is to run.
    fn wants(&self, id: &str) -> bool {
        self.section.as_deref().is_none_or(|s| s == id)
    }
}

/// The `reproduce` flags each chapter reads besides `--section`, `--seed`,
/// `--data-dir`, `--out` and `--device`; the others are refused rather than
/// silently ignored.
fn chapter_flags(chapter: &str) -> Option<&'static [&'static str]> {
    match chapter {
        "ch12" => Some(&[
            "lr",
            "iters",
            "hidden",
            "display_step",
            "epochs",
            "batch_size",
        ]),
        "ch13" => Some(&["epochs", "batch_size", "dataset", "subset", "verbose"]),
        "ex13" => Some(&["epochs", "subset"]),
        _ => None,
    }
}

/// Refuses the flags given on the command line (`given`, clap ids) that
/// `chapter` does not read.
fn check_chapter_flags(chapter: &str, given: &[String]) -> Result<()> {
    const COMMON: [&str; 6] = ["chapter", "section", "seed", "data_dir", "out", "device"];
    let Some(read) = chapter_flags(chapter) else {
        anyhow::bail!("unknown chapter {chapter:?}; available: ch12, ch13, ex13");
    };
    let flag = |id: &str| format!("--{}", id.replace('_', "-"));
    if let Some(unread) = given
        .iter()
        .find(|id| !COMMON.contains(&id.as_str()) && !read.contains(&id.as_str()))
    {
        let reads: Vec<String> = COMMON[1..].iter().chain(read).map(|id| flag(id)).collect();
        anyhow::bail!(
            "{} does not apply to {chapter}, which reads {}",
            flag(unread),
            reads.join(", ")
        );
    }
    Ok(())
}

/// The `reproduce` flags typed on the command line (not defaulted), by clap id.
fn reproduce_flags_given(matches: &clap::ArgMatches) -> Vec<String> {
    let Some(("reproduce", sub)) = matches.subcommand() else {
        return Vec::new();
    };
    let command = Cli::command();
    let Some(reproduce) = command.find_subcommand("reproduce") else {
        return Vec::new();
    };
    reproduce
        .get_arguments()
        .map(|arg| arg.get_id().as_str())
        .filter(|id| sub.value_source(id) == Some(ValueSource::CommandLine))
        .map(str::to_string)
        .collect()
}

fn main() {
    let matches = Cli::command().get_matches();
    let given = reproduce_flags_given(&matches);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Errors are the user's to read: print the chain, never a backtrace.
    if let Err(e) = run(cli, &given) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli, given: &[String]) -> Result<()> {
    match cli.command {
        Command::Reproduce(args) => {
            check_chapter_flags(&args.chapter, given)?;
            match args.chapter.as_str() {
                "ch12" => ch12::run(&args),
                "ch13" => ch13::run(&args),
                _ => ex13::run(&args),
            }
        }
        Command::Bench(args) => bench::run(&args),
        Command::Model(args) => model::run(&args),
        Command::Ch13Child(args) => ch13::child(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids `main` collects for `cargo xtask reproduce ARGS...`.
    fn given(args: &[&str]) -> Vec<String> {
        let argv = ["xtask", "reproduce"].iter().chain(args);
        reproduce_flags_given(&Cli::command().try_get_matches_from(argv).unwrap())
    }

    #[test]
    fn flags_a_chapter_does_not_read_are_refused_by_name() {
        let err = check_chapter_flags("ex13", &given(&["ex13", "--lr", "0.1"])).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("--lr does not apply to ex13"), "{text}");
        assert!(text.contains("--subset"), "{text}");
        let err = check_chapter_flags("ch13", &given(&["ch13", "--display-step", "5"]));
        assert!(err.unwrap_err().to_string().contains("--display-step"));
        let err = check_chapter_flags("ch12", &given(&["ch12", "--dataset", "mnist"]));
        assert!(err.is_err());
    }

    #[test]
    fn flags_a_chapter_reads_and_defaults_pass() {
        for args in [
            &["ch12", "--lr", "0.3", "--iters", "10", "--device", "cpu"][..],
            &[
                "ch13",
                "--section",
                "13.5",
                "--subset",
                "600",
                "--epochs",
                "1",
            ],
            &["ex13", "--subset", "1000", "--epochs", "1", "--out", "x"],
            &["ex13"],
        ] {
            check_chapter_flags(args[0], &given(args)).unwrap();
        }
        assert!(check_chapter_flags("ch14", &[]).is_err());
    }
}
