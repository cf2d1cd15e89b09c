//! Downloads, against a local HTTP server (tiny_http on 127.0.0.1, never the
//! internet).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hebb_data::{Check, DataDir, DatasetFile, Error};
use sha2::{Digest, Sha256};

/// A local server answering `GET /path` from a table; unknown paths get 404.
struct Mirror {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    server: Arc<tiny_http::Server>,
}

impl Mirror {
    fn serve(files: &[(&str, &[u8])]) -> Mirror {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let files: HashMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, b)| (format!("/{p}"), b.to_vec()))
            .collect();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (Arc::clone(&server), Arc::clone(&requests));
        std::thread::spawn(move || {
            for request in s.incoming_requests() {
                r.lock().unwrap().push(request.url().to_string());
                let response = match files.get(request.url()) {
                    Some(bytes) => tiny_http::Response::from_data(bytes.clone()),
                    None => {
                        tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404)
                    }
                };
                let _ = request.respond(response);
            }
        });
        Mirror {
            url: format!("http://127.0.0.1:{port}"),
            requests,
            server,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The names of the entries of `dir` (to see that no temp file is left).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// An Iris-format CSV with `rows` rows.
fn iris_csv(rows: usize) -> String {
    let mut csv = format!("{rows},4,setosa,versicolor,virginica\n");
    for i in 0..rows {
        csv += &format!("5.1,3.5,1.4,0.{},{}\n", i % 10, i % 3);
    }
    csv
}

const MNIST_LABELS: &str = "mnist/t10k-labels-idx1-ubyte.gz";

#[test]
fn good_checksum_puts_the_file_in_place() {
    let bytes = b"some bytes of a data file".as_slice();
    let mirror = Mirror::serve(&[("data/x.bin", bytes)]);
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("{}/data/x.bin", mirror.url);
    let sha = sha256_hex(bytes).to_uppercase(); // either case is accepted
    let entry = DatasetFile {
        path: "sub/x.bin",
        url: &url,
        check: Check::Sha256(&sha),
    };
    let path = DataDir::new(tmp.path()).fetch(&entry).unwrap();
    assert_eq!(path, tmp.path().join("sub/x.bin"));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(listing(&tmp.path().join("sub")), ["x.bin"]);
    assert_eq!(mirror.requests(), ["/data/x.bin"]);
}

#[test]
fn wrong_checksum_keeps_nothing() {
    let mirror = Mirror::serve(&[(MNIST_LABELS, b"not the MNIST labels")]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path()).with_mirror(&mirror.url);
    let err = dir.file(MNIST_LABELS).unwrap_err();
    let Error::Checksum {
        url,
        path,
        expected,
        actual,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*url, format!("{}/{MNIST_LABELS}", mirror.url));
    assert_eq!(*path, tmp.path().join(MNIST_LABELS));
    assert_eq!(
        expected,
        DatasetFile::find(MNIST_LABELS).unwrap().sha256().unwrap()
    );
    assert_eq!(*actual, sha256_hex(b"not the MNIST labels"));
    let msg = err.to_string();
    assert!(
        msg.contains(url) && msg.contains(expected) && msg.contains(actual),
        "{msg}"
    );
    assert!(!path.exists());
    assert_eq!(listing(&tmp.path().join("mnist")), Vec::<String>::new());
}

#[test]
fn http_404_names_the_url() {
    let mirror = Mirror::serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let err = DataDir::new(tmp.path())
        .with_mirror(format!("{}/", mirror.url))
        .file(MNIST_LABELS)
        .unwrap_err();
    let url = format!("{}/{MNIST_LABELS}", mirror.url);
    assert!(
        matches!(&err, Error::Download { url: u, .. } if *u == url),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&url) && msg.contains("404"), "{msg}");
    assert!(!tmp.path().join(MNIST_LABELS).exists());
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
}

#[test]
fn present_file_makes_no_request() {
    let mirror = Mirror::serve(&[(MNIST_LABELS, b"served")]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("mnist")).unwrap();
    std::fs::write(tmp.path().join(MNIST_LABELS), b"already here").unwrap();
    let path = DataDir::new(tmp.path())
        .with_mirror(&mirror.url)
        .file(MNIST_LABELS)
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"already here");
    assert!(mirror.requests().is_empty());
}

#[test]
fn offline_is_missing_and_names_file_url_and_env() {
    // A port that nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mirror = format!("http://127.0.0.1:{port}");
    let tmp = tempfile::tempdir().unwrap();
    let err = DataDir::new(tmp.path())
        .with_mirror(&mirror)
        .file(MNIST_LABELS)
        .unwrap_err();
    assert!(
        matches!(err, Error::Missing { url: Some(_), .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    for part in [
        MNIST_LABELS,
        &format!("{mirror}/{MNIST_LABELS}"),
        "HEBB_DATA_DIR",
    ] {
        assert!(msg.contains(part), "{msg:?} does not name {part}");
    }
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
}

#[test]
fn unknown_file_is_missing_without_url() {
    let tmp = tempfile::tempdir().unwrap();
    let err = DataDir::new(tmp.path()).file("cifar/data.bin").unwrap_err();
    assert!(matches!(err, Error::Missing { url: None, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("cifar/data.bin") && msg.contains("HEBB_DATA_DIR"),
        "{msg}"
    );
}

#[test]
fn iris_downloads_are_checked_by_shape() {
    let good = iris_csv(120);
    let short = iris_csv(119);
    let mirror = Mirror::serve(&[
        ("iris/iris_training.csv", good.as_bytes()),
        ("iris/iris_test.csv", short.as_bytes()),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path()).with_mirror(&mirror.url);
    // Bytes differ from the recorded sha256, the shape is right: kept.
    let path = dir.file("iris/iris_training.csv").unwrap();
    assert_eq!(std::fs::read_to_string(path).unwrap(), good);
    // A well-formed CSV of the wrong shape: rejected, nothing kept.
    let err = dir.file("iris/iris_test.csv").unwrap_err();
    assert!(matches!(err, Error::Download { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("expected an Iris CSV file of 30 rows"),
        "{err}"
    );
    assert_eq!(listing(&tmp.path().join("iris")), ["iris_training.csv"]);
}

#[test]
fn real_mnist_file_passes_the_manifest_checksum() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let Ok(bytes) = std::fs::read(shared.join(MNIST_LABELS)) else {
        eprintln!("skipping: no {MNIST_LABELS} in {}", shared.display());
        return;
    };
    let mirror = Mirror::serve(&[(MNIST_LABELS, &bytes)]);
    let tmp = tempfile::tempdir().unwrap();
    let path = DataDir::new(tmp.path())
        .with_mirror(&mirror.url)
        .file(MNIST_LABELS)
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
}

#[test]
fn read_only_data_dir_with_the_files_works() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    if !shared.join("mnist").is_dir() {
        eprintln!("skipping: no {}", shared.display());
        return;
    }
    // A mirror that cannot be reached: nothing may be fetched. (The shared
    // copy has Iris and MNIST; Fashion-MNIST's files are used where present.)
    let dir = DataDir::new(&shared).with_mirror("http://127.0.0.1:9");
    for entry in hebb_data::manifest::MANIFEST {
        if entry.path.starts_with("fashion-mnist/") && !shared.join(entry.path).is_file() {
            continue;
        }
        assert_eq!(dir.file(entry.path).unwrap(), shared.join(entry.path));
    }
}
