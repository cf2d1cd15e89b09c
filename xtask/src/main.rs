//! hebb's project automation (the xtask pattern): `cargo xtask reproduce ch12`
//! (and `ch13`) runs a chapter of the lecture end to end on the real data,
//! prints its tables and writes its figures; `cargo xtask reproduce convnet`
//! trains Keras' "Simple MNIST convnet"; `cargo xtask bench mnist` (and
//! `convnet`) times an MNIST training; `cargo xtask model summary|evaluate
//! PATH` reads any model file hebb reads.

mod bench;
mod ch12;
mod ch13;
mod convnet;
mod ex13;
mod model;
mod plot;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// mimalloc keeps the large, short-lived buffers of a training step in
/// user space; the system allocator returns them to the kernel and pays a
/// page fault and a page clear for every reuse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use hebb_models::sequential::Collective;

/// The help of every `--data-dir` flag: the order of `hebb_data::DataDir::resolve`.
const DATA_DIR_HELP: &str = "Data directory [default: $HEBB_DATA_DIR if set, else \
    ../shared/datasets beside the checkout if it holds data files, else datasets/cache in the \
    checkout; a missing file is downloaded into it]";

/// hebb's tasks.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "hebb's project automation",
    after_help = "Data sets are read from the first of: --data-dir DIR; $HEBB_DATA_DIR; \
        ../shared/datasets beside the checkout, if it holds data files; datasets/cache in the \
        checkout, where missing files are downloaded.\n\
        Output into a closed pipe (`cargo xtask reproduce ch12 | head`) ends the program \
        quietly, as Unix tools do."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reproduce a chapter of the lecture (`ch12`, `ch13`, `ex13`) or Keras' MNIST convnet
    /// (`convnet`): prints its tables, writes its plots.
    Reproduce(ReproduceArgs),
    /// Time a training job: `mnist` (the 13.5 fit) or `convnet` (one epoch of Keras' MNIST convnet).
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
    /// The chapter: `ch12`, `ch13`, `ex13` (the exercise of lecture 13), or `convnet`
    /// (Keras' "Simple MNIST convnet" example).
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
    /// Epochs of the Sequential fits of 12.3.2, 13.4-13.6, ex13's MNIST and convnet (default:
    /// the lecture's: 100 for Iris, 5 for MNIST; 1 for 13.6 alone; Keras' example's 15 for convnet).
    #[arg(long, value_parser = crate::at_least_one)]
    epochs: Option<usize>,
    /// Batch size of the Sequential fits of 12.3.2, 13.4-13.6 and convnet (default: the
    /// lecture's: 32 for Iris, 64 for MNIST; Keras' example's 128 for convnet).
    #[arg(long, value_parser = crate::at_least_one)]
    batch_size: Option<usize>,
    /// Data set of 13.5, 13.6 and convnet: `mnist` or `fashion-mnist`.
    #[arg(long, default_value = "mnist", value_parser = ["mnist", "fashion-mnist"])]
    dataset: String,
    /// Train 13.5, 13.6, ex13's MNIST and convnet on the first N training images only (a
    /// quick smoke run).
    #[arg(long, value_parser = crate::at_least_one)]
    subset: Option<usize>,
    /// Keras verbosity of the 13.5 and convnet fits: 0 silent, 1 progress bar, 2 one line per
    /// epoch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    verbose: u8,
    /// Print every n-th iteration of the loops of 12.2 and 12.6.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    display_step: u32,
    #[arg(long, help = DATA_DIR_HELP)]
    data_dir: Option<PathBuf>,
    /// Where figures go (default: `target/reproduce/CHAPTER`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the networks of 12.2, 12.6, 13.4, 13.5 and convnet train: `cpu`, `cuda` (or `gpu`),
    /// `cuda:N`, or `auto` (the GPU if one is usable, else the CPU; a line says which). GPUs
    /// need the xtask built with `--features cuda`: `cargo xtask-cuda ...`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// `--device auto`: puts the device `auto` names (the GPU if one is usable,
/// else the CPU: `hebb_tensor::Device::auto`) in place of `auto`, and says
/// which in one line, with the reason when it is the CPU. `refuses` tells
/// why the job's model cannot run on a device (a layer without GPU kernels,
/// `Sequential::to_device`'s error), if it cannot: `auto` then picks the
/// CPU and says why. Other names are left as they are.
pub(crate) fn choose_auto_device(
    flag: &mut String,
    refuses: impl FnOnce(hebb_tensor::Device) -> Option<String>,
) -> Option<String> {
    if !flag.trim().eq_ignore_ascii_case("auto") {
        return None;
    }
    let (mut device, why_not_gpu) = hebb_tensor::Device::auto();
    let line = match why_not_gpu {
        Some(e) => auto_device_line(device, Some(&e.to_string())),
        None => match refuses(device) {
            Some(why) => {
                device = hebb_tensor::Device::Cpu;
                format!("--device auto: cpu, as the model cannot run on the GPU ({why})")
            }
            None => auto_device_line(device, None),
        },
    };
    println!("{line}");
    *flag = device.to_string();
    Some(line)
}

/// The line `--device auto` prints: the device chosen, and why not a GPU.
fn auto_device_line(device: hebb_tensor::Device, why_not_gpu: Option<&str>) -> String {
    match why_not_gpu {
        None => format!("--device auto: {device}, a usable GPU"),
        Some(e) => {
            let hint = if cfg!(feature = "cuda") {
                ""
            } else {
                "; GPUs need `cargo xtask-cuda ...`"
            };
            format!("--device auto: {device}, as no GPU is usable ({e}{hint})")
        }
    }
}

/// The device named by a `--device` flag; a GPU is checked to be there.
/// Under `mpirun` a GPU means this process's own,
/// `cuda:(local rank mod GPUs)` (`hebb_distributed::local_device`).
pub(crate) fn parse_device(name: &str) -> Result<hebb_tensor::Device> {
    let device = parse_named_device(name)?;
    Ok(hebb_distributed::local_device(device)?)
}

fn parse_named_device(name: &str) -> Result<hebb_tensor::Device> {
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

/// The `reproduce` flags each section reads besides `--section`, `--seed`,
/// `--data-dir` and `--out`; a flag that no section to be run reads is
/// refused rather than silently ignored.
const SECTION_FLAGS: &[(&str, &str, &[&str])] = &[
    ("ch12", "12.1", &[]),
    ("ch12", "12.2", &["lr", "iters", "display_step", "device"]),
    ("ch12", "12.3", &[]),
    ("ch12", "12.3.2", &["epochs", "batch_size"]),
    ("ch12", "12.4", &[]),
    ("ch12", "12.5", &[]),
    (
        "ch12",
        "12.6",
        &["lr", "iters", "hidden", "display_step", "device"],
    ),
    ("ch13", "13.4", &["epochs", "batch_size", "device"]),
    (
        "ch13",
        "13.5",
        &[
            "epochs",
            "batch_size",
            "dataset",
            "subset",
            "verbose",
            "device",
        ],
    ),
    // 13.6 alone trains on the CPU; after 13.5 it saves the model 13.5 trained.
    (
        "ch13",
        "13.6",
        &["epochs", "batch_size", "dataset", "subset"],
    ),
    // ex13 compares the cost of BGD, SGD and MBGD steps on the CPU: no --device.
    ("ex13", "regression", &[]),
    ("ex13", "schedules", &[]),
    ("ex13", "mnist", &["epochs", "subset"]),
    ("ex13", "optimizers", &[]),
    // Keras' "Simple MNIST convnet": one recipe, no sections.
    (
        "convnet",
        "convnet",
        &[
            "epochs",
            "batch_size",
            "dataset",
            "subset",
            "verbose",
            "device",
        ],
    ),
];

/// Refuses the flags given on the command line (`given`, clap ids) that
/// no section of `chapter` to be run (`section`, else all) reads.
fn check_chapter_flags(chapter: &str, section: Option<&str>, given: &[String]) -> Result<()> {
    const COMMON: [&str; 5] = ["chapter", "section", "seed", "data_dir", "out"];
    let sections: Vec<_> = SECTION_FLAGS
        .iter()
        .filter(|(c, _, _)| *c == chapter)
        .collect();
    if sections.is_empty() {
        anyhow::bail!("unknown chapter {chapter:?}; available: ch12, ch13, ex13, convnet");
    }
    let run: Vec<_> = sections
        .iter()
        .filter(|(_, s, _)| section.is_none_or(|wanted| wanted == *s))
        .collect();
    // An unknown section is the chapter's to report, with its sections.
    if run.is_empty() {
        return Ok(());
    }
    let reads = |id: &str| COMMON.contains(&id) || run.iter().any(|(_, _, f)| f.contains(&id));
    let flag = |id: &str| format!("--{}", id.replace('_', "-"));
    if let Some(unread) = given.iter().find(|id| !reads(id)) {
        let mut read: Vec<String> = COMMON[1..].iter().map(|id| flag(id)).collect();
        for (_, _, flags) in &run {
            for f in flags.iter().map(|id| flag(id)) {
                if !read.contains(&f) {
                    read.push(f);
                }
            }
        }
        let what = match section {
            Some(s) => format!("section {s} of {chapter}"),
            None => chapter.to_string(),
        };
        anyhow::bail!(
            "{} does not apply to {what}, which reads {}",
            flag(unread),
            read.join(", ")
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

/// A write into a closed pipe (`cargo xtask reproduce ch12 | head -2`) ends
/// the process quietly, by SIGPIPE, as Unix tools end.
///
/// Rust programs ignore SIGPIPE, so such a write is an error, on which
/// `println!` panics ("failed printing to stdout: Broken pipe"). Restoring
/// the signal's default action covers every print at once: this program's,
/// hebb's libraries' (the fit log, the progress bar) and those of the
/// processes 13.6 starts, which run this function too (their output is read
/// through pipes this process holds). signal-hook runs the default action
/// from its handler; the workspace forbids the `unsafe` of a bare `signal`.
fn end_quietly_on_closed_pipes() {
    #[cfg(unix)]
    {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        let always = Arc::new(AtomicBool::new(true));
        if let Err(e) =
            signal_hook::flag::register_conditional_default(signal_hook::consts::SIGPIPE, always)
        {
            eprintln!("warning: SIGPIPE keeps being ignored ({e}); a closed pipe is an error");
        }
    }
}

/// The MPI world when `mpirun` started this program (`cargo xtask-mpi`);
/// taken and dropped before the program ends, which finalises MPI.
static GROUP: Mutex<Option<Arc<dyn Collective>>> = Mutex::new(None);

/// The group of a model on a GPU (NCCL over `GROUP`, made at the first
/// call and kept for the device), dropped before `GROUP` at the end.
static DEVICE_GROUP: Mutex<Option<(hebb_tensor::Device, Arc<dyn Collective>)>> = Mutex::new(None);

/// Makes `model`, to be trained on `device`, train data-parallel when the
/// program runs under `mpirun`; on a GPU its gradients are all-reduced by
/// NCCL where it loads (rank 0 says how, in one line).
pub(crate) fn data_parallel(
    model: &mut hebb_models::sequential::Sequential,
    device: hebb_tensor::Device,
) -> Result<()> {
    let Some(group) = GROUP.lock().ok().and_then(|g| g.clone()) else {
        return Ok(());
    };
    if !device.is_cuda() {
        model.distribute(group);
        return Ok(());
    }
    let mut slot = DEVICE_GROUP
        .lock()
        .map_err(|_| anyhow::anyhow!("the GPU group was poisoned"))?;
    let group = match slot.as_ref() {
        Some((d, g)) if *d == device => g.clone(),
        _ => {
            let (g, line) = hebb_distributed::on_device(group, device)?;
            println!("{line}");
            *slot = Some((device, g.clone()));
            g
        }
    };
    model.distribute(group);
    Ok(())
}

/// Ends the program with `code`, finalising MPI first (mpirun counts a
/// rank that exits without `MPI_Finalize` as failed).
fn exit(code: i32) -> ! {
    // A rank that fails alone would wait in MPI_Finalize for the others,
    // and they for it in their next collective call: end them all.
    if code != 0
        && let Some(group) = GROUP.lock().ok().and_then(|g| g.clone())
        && group.size() > 1
    {
        group.abort(code);
    }
    if let Ok(mut group) = DEVICE_GROUP.lock() {
        drop(group.take());
    }
    if let Ok(mut group) = GROUP.lock() {
        drop(group.take());
    }
    std::process::exit(code)
}

/// The jobs that train data-parallel under `mpirun`.
fn runs_data_parallel(cli: &Cli) -> bool {
    match &cli.command {
        Command::Reproduce(a) => {
            a.chapter == "convnet" || (a.chapter == "ch13" && a.section.as_deref() == Some("13.5"))
        }
        Command::Bench(_) => true,
        _ => false,
    }
}

fn main() {
    end_quietly_on_closed_pipes();
    let matches = Cli::command().get_matches();
    let given = reproduce_flags_given(&matches);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let group = hebb_distributed::init().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1);
    });
    // Under mpirun: rank 0 speaks and writes; the others train silently
    // and write their figures into a directory that goes with them.
    let mut _silence = None;
    let mut _scratch = None;
    if let Some(g) = group.as_ref().filter(|g| g.size() > 1) {
        if !runs_data_parallel(&cli) {
            eprintln!(
                "error: under mpirun ({}) only `reproduce ch13 --section 13.5`, `reproduce \
                 convnet` and `bench` run data-parallel; run this command without mpirun",
                hebb_distributed::describe(g.as_ref())
            );
            // The other ranks may run another command (mpirun's `a : b`).
            g.abort(1);
            drop(group);
            std::process::exit(1);
        }
        if g.rank() == 0 {
            println!("{}", hebb_distributed::describe(g.as_ref()));
        } else {
            _silence = gag::Gag::stdout().ok();
            if let Command::Reproduce(a) = &mut cli.command {
                _scratch = tempfile::tempdir().ok();
                a.out = _scratch.as_ref().map(|d| d.path().to_path_buf());
            }
        }
    }
    if let Ok(mut slot) = GROUP.lock() {
        *slot = group;
    }
    // Errors are the user's to read: print the chain, never a backtrace.
    let result = run(cli, &given);
    drop((_silence, _scratch));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        exit(1);
    }
    exit(0);
}

fn run(cli: Cli, given: &[String]) -> Result<()> {
    match cli.command {
        Command::Reproduce(mut args) => {
            check_chapter_flags(&args.chapter, args.section.as_deref(), given)?;
            let convnet = args.chapter == "convnet";
            choose_auto_device(&mut args.device, |d| {
                convnet.then(|| convnet::refuses(d)).flatten()
            });
            match args.chapter.as_str() {
                "ch12" => ch12::run(&args),
                "ch13" => ch13::run(&args),
                "convnet" => convnet::run(&args),
                _ => ex13::run(&args),
            }
        }
        Command::Bench(mut args) => {
            let convnet = args.job == "convnet";
            choose_auto_device(&mut args.device, |d| {
                convnet.then(|| convnet::refuses(d)).flatten()
            });
            bench::run(&args)
        }
        Command::Model(args) => model::run(&args),
        Command::Ch13Child(args) => ch13::child(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check_chapter_flags` on a command line `reproduce ARGS...`.
    fn check(args: &[&str]) -> Result<()> {
        let argv = ["xtask", "reproduce"].iter().chain(args);
        let matches = Cli::command().try_get_matches_from(argv).unwrap();
        let section = matches
            .subcommand()
            .and_then(|(_, sub)| sub.get_one::<String>("section").cloned());
        check_chapter_flags(
            args[0],
            section.as_deref(),
            &reproduce_flags_given(&matches),
        )
    }

    #[test]
    fn device_auto_says_which_device_and_why_not_the_gpu() {
        let mut flag = String::from("cuda:1");
        assert_eq!(choose_auto_device(&mut flag, |_| None), None);
        assert_eq!(flag, "cuda:1");
        let mut flag = String::from("Auto");
        let line = choose_auto_device(&mut flag, |_| None).unwrap();
        let (device, why_not_gpu) = hebb_tensor::Device::auto();
        assert_eq!(flag, device.to_string());
        assert_eq!(parse_device(&flag).unwrap(), device);
        assert!(!line.contains('\n'), "{line}");
        if device.is_cuda() {
            assert_eq!(line, format!("--device auto: {device}, a usable GPU"));
        } else {
            let why = why_not_gpu.unwrap().to_string();
            assert!(
                line.starts_with(&format!("--device auto: cpu, as no GPU is usable ({why}")),
                "{line}"
            );
        }
        #[cfg(not(feature = "cuda"))]
        assert!(
            line.ends_with("built without its `cuda` feature; GPUs need `cargo xtask-cuda ...`)"),
            "{line}"
        );
        // A model with layers the GPU cannot run takes the CPU, and says why.
        let mut flag = String::from("auto");
        let line = choose_auto_device(&mut flag, |_| Some("no kernels".into())).unwrap();
        assert_eq!(flag, "cpu");
        if device.is_cuda() {
            assert_eq!(
                line,
                "--device auto: cpu, as the model cannot run on the GPU (no kernels)"
            );
        }
        // `auto` is read by the sections that read --device.
        assert!(check(&["ch12", "--section", "12.2", "--device", "auto"]).is_ok());
        assert!(check(&["ch12", "--section", "12.1", "--device", "auto"]).is_err());
    }

    #[test]
    fn flags_no_section_to_run_reads_are_refused_by_name() {
        let text = check(&["ex13", "--lr", "0.1"]).unwrap_err().to_string();
        assert!(text.starts_with("--lr does not apply to ex13"), "{text}");
        assert!(text.contains("--subset"), "{text}");
        assert!(check(&["ch13", "--display-step", "5"]).is_err());
        assert!(check(&["ch12", "--dataset", "mnist"]).is_err());
        // A flag another section reads.
        let text = check(&["ex13", "--section", "regression", "--epochs", "3"])
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("--epochs does not apply to section regression of ex13"),
            "{text}"
        );
        assert!(check(&["ch12", "--section", "12.2", "--hidden", "5"]).is_err());
        assert!(check(&["ch13", "--section", "13.4", "--subset", "5"]).is_err());
        assert!(check(&["ch13", "--section", "13.6", "--device", "cuda"]).is_err());
        assert!(check(&["ex13", "--device", "cpu"]).is_err());
        let text = check(&["convnet", "--lr", "0.1"]).unwrap_err().to_string();
        assert!(text.starts_with("--lr does not apply to convnet"), "{text}");
        assert!(
            text.contains("--subset") && text.contains("--dataset"),
            "{text}"
        );
        assert!(check(&["convnet", "--iters", "3"]).is_err());
    }

    #[test]
    fn flags_a_section_reads_and_defaults_pass() {
        for args in [
            &["ch12", "--lr", "0.3", "--iters", "10", "--device", "cpu"][..],
            &["ch12", "--section", "12.6", "--hidden", "5", "--seed", "1"],
            &["ch12", "--section", "12.3.2", "--epochs", "3"],
            &[
                "ch13",
                "--section",
                "13.5",
                "--subset",
                "600",
                "--epochs",
                "1",
            ],
            &["ch13", "--verbose", "2", "--dataset", "fashion-mnist"],
            &["ex13", "--subset", "1000", "--epochs", "1", "--out", "x"],
            &["ex13", "--section", "mnist", "--subset", "1000"],
            &["ex13"],
            &[
                "convnet",
                "--subset",
                "2000",
                "--epochs",
                "1",
                "--dataset",
                "fashion-mnist",
                "--verbose",
                "2",
                "--batch-size",
                "64",
                "--seed",
                "1",
                "--out",
                "x",
            ],
            // An unknown section is left to the chapter, which lists its sections.
            &["ch12", "--section", "12.9", "--lr", "0.1"],
        ] {
            check(args).unwrap();
        }
        assert!(check(&["ch14"]).is_err());
    }
}
