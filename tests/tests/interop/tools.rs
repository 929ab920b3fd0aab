//! Running circom2 and snarkjs from the repository's node_modules, and the artefacts shared
//! by the tests of this binary (made once: the powers of tau is the slow part).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Powers of tau size for every BN254 circuit here: 2^10 rows hold the largest (Poseidon,
/// 517 constraints; the MiMC7 Merkle proof, ~740) and `prepare phase2` takes ~35 s on 2 cores
/// (each power more doubles it).
pub const PTAU_POWER: u32 = 10;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// A scratch directory for this test process under cargo's target tmp dir.
pub fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("interop-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("creating the interop work dir");
        d
    })
}

/// The directory that really holds `node_modules`: the repository root, or the checkout a
/// worktree's `node_modules` links to. The tools run there, because circom2 runs under WASI,
/// which refuses any path through a symbolic link that leaves its working directory.
fn tools_root() -> PathBuf {
    let modules = repo_root().join("node_modules");
    match modules.canonicalize() {
        Ok(real) => real.parent().map_or(repo_root(), Path::to_path_buf),
        Err(_) => repo_root(),
    }
}

fn npx(tool: &str, args: &[&str]) -> Output {
    let root = tools_root();
    assert!(
        root.join("node_modules/.bin").join(tool).exists(),
        "{tool} is not installed in {}/node_modules: run ./scripts/setup-tools.sh",
        root.display()
    );
    Command::new("npx")
        .arg("--no-install")
        .arg(tool)
        .args(args)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("running npx {tool}: {e}"))
}

/// Runs a tool and panics with its output unless it exits 0.
pub fn run(tool: &str, args: &[&str]) -> String {
    let out = npx(tool, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

/// `snarkjs groth16 verify`: true on exit 0 (and "OK!").
pub fn snarkjs_verifies(vk: &Path, public: &Path, proof: &Path) -> bool {
    let out = npx(
        "snarkjs",
        &["groth16", "verify", s(vk), s(public), s(proof)],
    );
    let ok = out.status.success() && String::from_utf8_lossy(&out.stdout).contains("OK!");
    assert!(
        ok || out.status.code() == Some(1),
        "snarkjs verify crashed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A prepared powers of tau for `curve` at 2^`power`, with one contribution.
pub fn make_ptau(curve: &str, power: u32, dir: &Path) -> PathBuf {
    let p0 = dir.join(format!("{curve}-{power}-0.ptau"));
    let p1 = dir.join(format!("{curve}-{power}-1.ptau"));
    let out = dir.join(format!("{curve}-{power}.ptau"));
    run(
        "snarkjs",
        &["powersoftau", "new", curve, &power.to_string(), s(&p0)],
    );
    run(
        "snarkjs",
        &[
            "powersoftau",
            "contribute",
            s(&p0),
            s(&p1),
            "-e=interop test entropy",
        ],
    );
    run(
        "snarkjs",
        &["powersoftau", "prepare", "phase2", s(&p1), s(&out)],
    );
    out
}

/// The BN254 powers of tau, made once per test binary.
pub fn bn128_ptau() -> &'static Path {
    static PTAU: OnceLock<PathBuf> = OnceLock::new();
    PTAU.get_or_init(|| make_ptau("bn128", PTAU_POWER, work_dir()))
}

/// A compiled and set-up circuit.
pub struct Built {
    pub dir: PathBuf,
    pub zkey: PathBuf,
    pub vk: PathBuf,
    pub wtns: PathBuf,
    pub r1cs: PathBuf,
    /// The witness generator (`circom --wasm`).
    pub wasm: PathBuf,
}

/// Compiles `source` (circom 2 with circomlib on the include path), sets it up with a
/// contributed zkey, exports its verification key and computes the witness for `input`.
pub fn build(name: &str, source: &str, input: &str, prime: &str, ptau: &Path) -> Built {
    let dir = work_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    // Not `{name}.circom`: a circuit named like the circomlib file it includes (mimc.circom,
    // poseidon.circom) would include itself, since circom looks beside the file first.
    let stem = format!("{name}_circuit");
    let circom = dir.join(format!("{stem}.circom"));
    std::fs::write(&circom, source).unwrap();
    let lib = tools_root().join("node_modules/circomlib/circuits");
    run(
        "circom2",
        &[
            s(&circom),
            "--r1cs",
            "--wasm",
            "--prime",
            prime,
            "-o",
            s(&dir),
            "-l",
            s(&lib),
        ],
    );
    let r1cs = dir.join(format!("{stem}.r1cs"));
    let wasm = dir.join(format!("{stem}_js/{stem}.wasm"));
    let z0 = dir.join("circuit_0000.zkey");
    let zkey = dir.join("circuit.zkey");
    let vk = dir.join("verification_key.json");
    let wtns = dir.join("witness.wtns");
    let input_path = dir.join("input.json");
    std::fs::write(&input_path, input).unwrap();
    let out = run("snarkjs", &["groth16", "setup", s(&r1cs), s(ptau), s(&z0)]);
    // snarkjs exits 0 with an empty zkey when the circuit outgrows the powers of tau
    let written = std::fs::metadata(&z0).map_or(0, |m| m.len());
    assert!(
        written > 0,
        "snarkjs groth16 setup wrote no zkey for {name}:\n{out}"
    );
    run(
        "snarkjs",
        &["zkey", "contribute", s(&z0), s(&zkey), "-e=zkey entropy"],
    );
    run(
        "snarkjs",
        &["zkey", "export", "verificationkey", s(&zkey), s(&vk)],
    );
    run(
        "snarkjs",
        &["wtns", "calculate", s(&wasm), s(&input_path), s(&wtns)],
    );
    Built {
        dir,
        zkey,
        vk,
        wtns,
        r1cs,
        wasm,
    }
}

pub const POSEIDON: &str = r#"pragma circom 2.0.0;
include "poseidon.circom";
template Hash2() {
    signal input a;
    signal input b;
    signal output out;
    component h = Poseidon(2);
    h.inputs[0] <== a;
    h.inputs[1] <== b;
    out <== h.out;
}
component main {public [b]} = Hash2();
"#;

pub const MIMC: &str = r#"pragma circom 2.0.0;
include "mimc.circom";
template Mimc() {
    signal input x;
    signal input k;
    signal output out;
    component m = MiMC7(91);
    m.x_in <== x;
    m.k <== k;
    out <== m.out;
}
component main {public [k]} = Mimc();
"#;

/// A depth-2 Merkle inclusion proof hashing pairs with MiMC7 (the left child keyed by the
/// right one); the root is the only public signal.
pub const MERKLE: &str = r#"pragma circom 2.0.0;
include "mimc.circom";
template Merkle(depth) {
    signal input leaf;
    signal input siblings[depth];
    signal input index_bits[depth];
    signal output root;
    component h[depth];
    signal cur[depth + 1];
    signal left[depth];
    signal right[depth];
    cur[0] <== leaf;
    for (var i = 0; i < depth; i++) {
        index_bits[i] * (1 - index_bits[i]) === 0;
        left[i] <== cur[i] + index_bits[i] * (siblings[i] - cur[i]);
        right[i] <== siblings[i] + index_bits[i] * (cur[i] - siblings[i]);
        h[i] = MiMC7(91);
        h[i].x_in <== left[i];
        h[i].k <== right[i];
        cur[i + 1] <== h[i].out;
    }
    root <== cur[depth];
}
component main = Merkle(2);
"#;

pub fn poseidon() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        build(
            "poseidon",
            POSEIDON,
            r#"{"a": "3", "b": "5"}"#,
            "bn128",
            bn128_ptau(),
        )
    })
}

pub fn mimc() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        build(
            "mimc",
            MIMC,
            r#"{"x": "7", "k": "11"}"#,
            "bn128",
            bn128_ptau(),
        )
    })
}

pub fn merkle() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        build(
            "merkle",
            MERKLE,
            r#"{"leaf": "42", "siblings": ["17", "99"], "index_bits": ["1", "0"]}"#,
            "bn128",
            bn128_ptau(),
        )
    })
}
