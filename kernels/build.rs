//! Builds the CUDA kernels twice from one source (`kernels/cuda/*.cu`):
//!
//! 1. For the device with NVRTC, at build time: a cubin for sm_80 and one for sm_90, plus PTX
//!    for compute_80 (the driver JIT-compiles it on other architectures). The images are
//!    embedded in the crate (`$OUT_DIR/embedded_kernels.rs`), so an agent needs neither NVRTC
//!    nor a JIT at start-up, and CI compiling the crate is CI compiling every kernel.
//!    libnvrtc is loaded with `libloading` from `$PROOFRACK_NVRTC_LIB`, else from
//!    `<workspace>/.tools/py/nvidia/cuda_nvrtc/lib/libnvrtc.so.12` (see DEPENDENCIES.md).
//!    Without it the build warns, leaves the cfg `proofrack_cuda_kernels` unset and the CUDA
//!    backend reports that the build has no kernels; with `PROOFRACK_REQUIRE_KERNELS=1` (CI)
//!    the build fails instead.
//! 2. For the host with g++ (`cc`, C++20) and the SIMT emulator (`cuda/simt_host.h`), into a
//!    static library the tests run the same kernels through.
//!
//! `PROOFRACK_SKIP_NVRTC=1` skips the device build (for iterating on emulated kernels).
//!
//! The ptxas report (`-Xptxas -v`: registers, spills per kernel) of every cubin is written to
//! `$OUT_DIR/kernels-report.txt`; any spill is a build warning.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The device targets: (name used in file names, `--gpu-architecture`, cubin or PTX).
const TARGETS: &[(&str, &str, bool)] = &[
    ("sm_80", "sm_80", true),
    ("sm_90", "sm_90", true),
    ("compute_80", "compute_80", false),
];

/// Set to 1 to compile the kernels with source line tables (for Nsight Compute's source
/// view). Off by default: line tables add ~25% to images every agent binary carries.
const LINEINFO_ENV: &str = "PROOFRACK_KERNELS_LINEINFO";

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cuda_dir = manifest.join("cuda");
    println!("cargo::rustc-check-cfg=cfg(proofrack_cuda_kernels)");
    println!("cargo:rerun-if-env-changed=PROOFRACK_NVRTC_LIB");
    println!("cargo:rerun-if-env-changed=PROOFRACK_REQUIRE_KERNELS");
    println!("cargo:rerun-if-env-changed=PROOFRACK_SKIP_NVRTC");
    println!("cargo:rerun-if-env-changed={LINEINFO_ENV}");
    println!("cargo:rerun-if-changed={}", cuda_dir.display());

    let mut headers = Vec::new();
    let mut kernel_sources = Vec::new();
    let mut host_sources = Vec::new();
    for entry in std::fs::read_dir(&cuda_dir).expect("kernels/cuda exists") {
        let path = entry.expect("readable kernels/cuda entry").path();
        println!("cargo:rerun-if-changed={}", path.display());
        match path.extension().and_then(|e| e.to_str()) {
            Some("cu") => kernel_sources.push(path),
            Some("cuh") | Some("h") => headers.push(path),
            _ => {}
        }
    }
    let host_dir = cuda_dir.join("host");
    println!("cargo:rerun-if-changed={}", host_dir.display());
    for entry in std::fs::read_dir(&host_dir).expect("kernels/cuda/host exists") {
        let path = entry.expect("readable kernels/cuda/host entry").path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.extension().and_then(|e| e.to_str()) == Some("cpp") {
            host_sources.push(path);
        }
    }
    kernel_sources.sort();
    host_sources.sort();

    let modules: Vec<Module> = kernel_sources
        .iter()
        .map(|path| Module::scan(path))
        .collect();

    let host_secs = build_host_library(&modules, &host_sources, &cuda_dir);
    write_host_table(&modules, &out_dir);

    let require = std::env::var("PROOFRACK_REQUIRE_KERNELS")
        .map(|v| v == "1")
        .unwrap_or(false);
    // PROOFRACK_SKIP_NVRTC=1: build as if NVRTC were missing (fast iteration on the emulated
    // kernels; the CUDA backend then reports itself unavailable).
    let skip = std::env::var("PROOFRACK_SKIP_NVRTC")
        .map(|v| v == "1")
        .unwrap_or(false);
    let nvrtc = if skip {
        Err("PROOFRACK_SKIP_NVRTC=1".to_string())
    } else {
        Nvrtc::load(&manifest)
    };
    match nvrtc {
        Ok(nvrtc) => {
            let started = Instant::now();
            let mut report = String::new();
            let _ = writeln!(report, "host (g++, emulated) kernels: {host_secs:.1} s");
            let _ = writeln!(
                report,
                "NVRTC {} from {}",
                nvrtc.version(),
                nvrtc.path.display()
            );
            let mut images = Vec::new();
            for module in &modules {
                match compile_module(&nvrtc, module, &cuda_dir, &out_dir, &mut report) {
                    Ok(files) => images.push(files),
                    Err(e) => panic!("NVRTC failed to compile {}:\n{e}", module.path.display()),
                }
            }
            let _ = writeln!(
                report,
                "total NVRTC time {:.1} s",
                started.elapsed().as_secs_f64()
            );
            let report_path = out_dir.join("kernels-report.txt");
            std::fs::write(&report_path, &report).expect("write kernels-report.txt");
            for line in report.lines().filter(|l| {
                l.contains("spill") && !l.contains(" 0 bytes spill stores, 0 bytes spill loads")
            }) {
                println!(
                    "cargo:warning=kernel spills registers: {line} (see {})",
                    report_path.display()
                );
            }
            println!("cargo:rustc-cfg=proofrack_cuda_kernels");
            write_embedded(&modules, &images, &out_dir);
        }
        Err(why) => {
            if require {
                panic!(
                    "PROOFRACK_REQUIRE_KERNELS=1 but NVRTC is not available: {why}. Install it with \
                     `python3 -m pip install --target .tools/py nvidia-cuda-nvrtc-cu12==12.9.86` in the \
                     workspace root or point PROOFRACK_NVRTC_LIB at libnvrtc.so.12."
                );
            }
            println!(
                "cargo:warning=this build has no CUDA kernels: {why}; the CUDA backend will report itself \
                 unavailable (install NVRTC, see kernels/build.rs)"
            );
            write_embedded(&modules, &[], &out_dir);
        }
    }
}

/// One kernel source file: an NVRTC program and a module at run time.
struct Module {
    name: String,
    path: PathBuf,
    kernels: Vec<String>,
}

impl Module {
    fn scan(path: &Path) -> Module {
        let text = std::fs::read_to_string(path).expect("readable kernel source");
        let mut kernels = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("PR_EXPORT_KERNEL(") {
                let name = rest.split(')').next().unwrap_or("").trim();
                assert!(
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad PR_EXPORT_KERNEL line in {}: {line}",
                    path.display()
                );
                kernels.push(name.to_string());
            }
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name")
            .to_string();
        Module {
            name,
            path: path.to_path_buf(),
            kernels,
        }
    }
}

/// Compiles the host library; returns its compile time in seconds.
fn build_host_library(modules: &[Module], host_sources: &[PathBuf], cuda_dir: &Path) -> f64 {
    let started = Instant::now();
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .include(cuda_dir)
        .opt_level(2)
        .flag_if_supported("-Wno-unknown-pragmas")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-unused-function")
        .warnings(true);
    // .cu files are CUDA C++ that the emulator header makes plain C++
    build.flag("-x").flag("c++");
    for m in modules {
        build.file(&m.path);
    }
    for s in host_sources {
        build.file(s);
    }
    build.compile("proofrack_host_kernels");
    started.elapsed().as_secs_f64()
}

fn write_host_table(modules: &[Module], out_dir: &Path) {
    let mut s = String::from(
        "// Generated by build.rs: the emulated kernels' launch entries.\n\
         unsafe extern \"C\" {\n",
    );
    for m in modules {
        for k in &m.kernels {
            let _ = writeln!(s, "    fn prk_host_launch_{k}(grid: *const u32, block: *const u32, shared_bytes: usize, params: *mut *mut core::ffi::c_void, err: *mut core::ffi::c_char, err_len: usize) -> i32;");
        }
    }
    s.push_str("}\n\n/// (kernel name, emulated launch entry) for every exported kernel.\npub(crate) static HOST_KERNELS: &[(&str, HostLaunchFn)] = &[\n");
    for m in modules {
        for k in &m.kernels {
            let _ = writeln!(s, "    (\"{k}\", prk_host_launch_{k}),");
        }
    }
    s.push_str("];\n");
    std::fs::write(out_dir.join("host_kernels.rs"), s).expect("write host_kernels.rs");
}

/// Image files of one module, by target name.
struct ModuleImages {
    files: Vec<(String, PathBuf)>,
}

fn write_embedded(modules: &[Module], images: &[ModuleImages], out_dir: &Path) {
    let mut s =
        String::from("// Generated by build.rs: kernel images compiled by NVRTC at build time.\n");
    s.push_str("pub(crate) static EMBEDDED_MODULES: &[EmbeddedModule] = &[\n");
    for (i, m) in modules.iter().enumerate() {
        let image = |target: &str| -> String {
            images
                .get(i)
                .and_then(|im| im.files.iter().find(|(t, _)| t == target))
                .map(|(_, p)| deflated_image(p))
                .unwrap_or_else(|| "EmbeddedImage::NONE".to_string())
        };
        let kernels: Vec<String> = m.kernels.iter().map(|k| format!("{k:?}")).collect();
        let _ = writeln!(
            s,
            "    EmbeddedModule {{ name: {:?}, kernels: &[{}], cubin_sm80: {}, cubin_sm90: {}, ptx_compute80: {} }},",
            m.name,
            kernels.join(", "),
            image("sm_80"),
            image("sm_90"),
            image("compute_80"),
        );
    }
    s.push_str("];\n");
    std::fs::write(out_dir.join("embedded_kernels.rs"), s).expect("write embedded_kernels.rs");
}

/// Deflates one image next to itself and returns the `EmbeddedImage` expression that embeds
/// it. The kernels are ~16 MB as built (PTX text ~12:1, cubins ~4:1 compressed); every agent
/// binary carries them, so they are embedded compressed and inflated once at module load.
fn deflated_image(path: &Path) -> String {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    // Level 9: the best ratio miniz offers short of its slow "uber" mode.
    let deflated = miniz_oxide::deflate::compress_to_vec(&raw, 9);
    let out = path.with_extension(format!(
        "{}.deflate",
        path.extension().and_then(|e| e.to_str()).unwrap_or("bin")
    ));
    std::fs::write(&out, &deflated).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
    format!(
        "EmbeddedImage {{ deflated: include_bytes!({:?}), len: {} }}",
        out.display().to_string(),
        raw.len()
    )
}

fn compile_module(
    nvrtc: &Nvrtc,
    module: &Module,
    cuda_dir: &Path,
    out_dir: &Path,
    report: &mut String,
) -> Result<ModuleImages, String> {
    let source = std::fs::read_to_string(&module.path).map_err(|e| e.to_string())?;
    let lineinfo = std::env::var(LINEINFO_ENV).as_deref() == Ok("1");
    let results: Vec<Result<(String, PathBuf, String, f64), String>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = TARGETS
                .iter()
                .map(|&(tname, arch, cubin)| {
                    let source = &source;
                    scope.spawn(move || {
                        let started = Instant::now();
                        let mut opts = vec![
                            "-std=c++17".to_string(),
                            format!("--gpu-architecture={arch}"),
                            "-default-device".to_string(),
                            format!("--include-path={}", cuda_dir.display()),
                        ];
                        if lineinfo {
                            opts.push("-lineinfo".to_string());
                        }
                        if cubin {
                            opts.push("-Xptxas".to_string());
                            opts.push("-v".to_string());
                        }
                        let file_name = format!("{}.cu", module.name);
                        let (image, log) = nvrtc.compile(source, &file_name, &opts, cubin)?;
                        let ext = if cubin { "cubin" } else { "ptx" };
                        let path = out_dir.join(format!("{}.{tname}.{ext}", module.name));
                        std::fs::write(&path, &image).map_err(|e| e.to_string())?;
                        Ok((
                            tname.to_string(),
                            path,
                            log,
                            started.elapsed().as_secs_f64(),
                        ))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("NVRTC thread panicked"))
                .collect()
        });
    let mut files = Vec::new();
    for r in results {
        let (tname, path, log, secs) = r?;
        let _ = writeln!(report, "== {} for {tname}: {secs:.1} s", module.name);
        report.push_str(&log);
        report.push('\n');
        files.push((tname, path));
    }
    Ok(ModuleImages { files })
}

type NvrtcResult = c_int;
type NvrtcProgram = *mut c_void;

/// The handful of NVRTC entry points the build needs, loaded at build time.
struct Nvrtc {
    path: PathBuf,
    _lib: libloading::Library,
    version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> NvrtcResult,
    create: unsafe extern "C" fn(
        *mut NvrtcProgram,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> NvrtcResult,
    compile: unsafe extern "C" fn(NvrtcProgram, c_int, *const *const c_char) -> NvrtcResult,
    destroy: unsafe extern "C" fn(*mut NvrtcProgram) -> NvrtcResult,
    log_size: unsafe extern "C" fn(NvrtcProgram, *mut usize) -> NvrtcResult,
    log: unsafe extern "C" fn(NvrtcProgram, *mut c_char) -> NvrtcResult,
    cubin_size: unsafe extern "C" fn(NvrtcProgram, *mut usize) -> NvrtcResult,
    cubin: unsafe extern "C" fn(NvrtcProgram, *mut c_char) -> NvrtcResult,
    ptx_size: unsafe extern "C" fn(NvrtcProgram, *mut usize) -> NvrtcResult,
    ptx: unsafe extern "C" fn(NvrtcProgram, *mut c_char) -> NvrtcResult,
    error_string: unsafe extern "C" fn(NvrtcResult) -> *const c_char,
}

impl Nvrtc {
    fn load(manifest: &Path) -> Result<Nvrtc, String> {
        let path = match std::env::var_os("PROOFRACK_NVRTC_LIB") {
            Some(p) => PathBuf::from(p),
            None => manifest
                .parent()
                .unwrap_or(manifest)
                .join(".tools/py/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"),
        };
        if !path.exists() {
            return Err(format!("no libnvrtc at {}", path.display()));
        }
        // libnvrtc finds libnvrtc-builtins next to itself (its RUNPATH is $ORIGIN), so loading
        // it by full path is enough.
        // SAFETY: loading NVRTC runs its initialisers, which have no preconditions.
        let lib = unsafe { libloading::Library::new(&path) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the signature matches nvrtc.h for this symbol.
                *unsafe { lib.get($name) }
                    .map_err(|e| format!("{} lacks a symbol: {e}", path.display()))?
            };
        }
        Ok(Nvrtc {
            version: sym!(b"nvrtcVersion\0"),
            create: sym!(b"nvrtcCreateProgram\0"),
            compile: sym!(b"nvrtcCompileProgram\0"),
            destroy: sym!(b"nvrtcDestroyProgram\0"),
            log_size: sym!(b"nvrtcGetProgramLogSize\0"),
            log: sym!(b"nvrtcGetProgramLog\0"),
            cubin_size: sym!(b"nvrtcGetCUBINSize\0"),
            cubin: sym!(b"nvrtcGetCUBIN\0"),
            ptx_size: sym!(b"nvrtcGetPTXSize\0"),
            ptx: sym!(b"nvrtcGetPTX\0"),
            error_string: sym!(b"nvrtcGetErrorString\0"),
            path,
            _lib: lib,
        })
    }

    fn version(&self) -> String {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: two out-pointers to live integers.
        unsafe { (self.version)(&mut major, &mut minor) };
        format!("{major}.{minor}")
    }

    fn error(&self, code: NvrtcResult) -> String {
        // SAFETY: NVRTC returns a static NUL-terminated string for every code.
        unsafe { CStr::from_ptr((self.error_string)(code)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Compiles one program; returns (image, log). The image is a cubin or NUL-free PTX text.
    fn compile(
        &self,
        source: &str,
        name: &str,
        opts: &[String],
        cubin: bool,
    ) -> Result<(Vec<u8>, String), String> {
        let src = CString::new(source).map_err(|_| "kernel source contains NUL".to_string())?;
        let cname = CString::new(name).expect("file name has no NUL");
        let copts: Vec<CString> = opts
            .iter()
            .map(|o| CString::new(o.as_str()).expect("option has no NUL"))
            .collect();
        let opt_ptrs: Vec<*const c_char> = copts.iter().map(|o| o.as_ptr()).collect();
        let mut prog: NvrtcProgram = std::ptr::null_mut();
        // SAFETY: all pointers reference live NUL-terminated strings for the call's duration.
        let rc = unsafe {
            (self.create)(
                &mut prog,
                src.as_ptr(),
                cname.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(format!("nvrtcCreateProgram: {}", self.error(rc)));
        }
        // SAFETY: prog was created above; option pointers are live.
        let rc = unsafe { (self.compile)(prog, opt_ptrs.len() as c_int, opt_ptrs.as_ptr()) };
        let mut log_len = 0usize;
        // SAFETY: prog is live; the buffer has the size NVRTC reported.
        let log = unsafe {
            (self.log_size)(prog, &mut log_len);
            let mut buf = vec![0u8; log_len.max(1)];
            (self.log)(prog, buf.as_mut_ptr() as *mut c_char);
            String::from_utf8_lossy(&buf[..log_len.saturating_sub(1)]).into_owned()
        };
        if rc != 0 {
            // SAFETY: prog is live and destroyed once.
            unsafe { (self.destroy)(&mut prog) };
            return Err(format!("{} with options {opts:?}:\n{log}", self.error(rc)));
        }
        let mut size = 0usize;
        // SAFETY: prog is live; the buffer has the size NVRTC reported.
        let image = unsafe {
            if cubin {
                (self.cubin_size)(prog, &mut size);
                let mut buf = vec![0u8; size];
                (self.cubin)(prog, buf.as_mut_ptr() as *mut c_char);
                buf
            } else {
                (self.ptx_size)(prog, &mut size);
                let mut buf = vec![0u8; size];
                (self.ptx)(prog, buf.as_mut_ptr() as *mut c_char);
                buf
            }
        };
        // SAFETY: prog is live and destroyed once.
        unsafe { (self.destroy)(&mut prog) };
        if image.is_empty() {
            return Err(format!(
                "NVRTC produced an empty image for {name} ({opts:?})"
            ));
        }
        Ok((image, log))
    }
}
