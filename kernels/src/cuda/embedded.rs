//! The kernel images compiled by NVRTC at build time (see `kernels/build.rs`): one module per
//! `kernels/cuda/*.cu`, each with a cubin for sm_80 and sm_90 and PTX for compute_80. They
//! are embedded deflated (16 MB as built, ~3 MB compressed: every GPU box installs the agent
//! binary) and inflated when the module is loaded.

/// One NVRTC program: its exported kernels and images (empty when built without NVRTC).
#[derive(Debug)]
pub(crate) struct EmbeddedModule {
    pub name: &'static str,
    pub kernels: &'static [&'static str],
    pub cubin_sm80: EmbeddedImage,
    pub cubin_sm90: EmbeddedImage,
    /// NUL-terminated PTX text for compute_80, JIT-compiled by the driver on other GPUs.
    pub ptx_compute80: EmbeddedImage,
}

/// One device image, deflated (raw DEFLATE, no header), and its inflated length.
#[derive(Debug)]
pub(crate) struct EmbeddedImage {
    pub deflated: &'static [u8],
    pub len: usize,
}

impl EmbeddedImage {
    /// What a build without NVRTC embeds (only such builds name it).
    #[allow(dead_code)]
    pub const NONE: EmbeddedImage = EmbeddedImage {
        deflated: &[],
        len: 0,
    };

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The image as NVRTC produced it. Fails only if the binary itself is damaged.
    pub fn inflate(&self) -> Result<Vec<u8>, String> {
        let bytes = miniz_oxide::inflate::decompress_to_vec_with_limit(self.deflated, self.len)
            .map_err(|e| format!("embedded kernel image does not inflate: {e:?}"))?;
        if bytes.len() != self.len {
            return Err(format!(
                "embedded kernel image inflates to {} bytes, built as {}",
                bytes.len(),
                self.len
            ));
        }
        Ok(bytes)
    }
}

include!(concat!(env!("OUT_DIR"), "/embedded_kernels.rs"));

/// Which image a device of compute capability `major.minor` loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageKind {
    CubinSm80,
    CubinSm90,
    PtxCompute80,
}

impl ImageKind {
    /// sm_90 cubin for 9.x, sm_80 cubin for 8.x, otherwise PTX (JIT) for 8.x-compatible
    /// newer devices; `None` below 8.0 (the PTX targets compute_80).
    pub fn for_compute_capability(major: i32, minor: i32) -> Option<ImageKind> {
        let _ = minor;
        match major {
            9 => Some(ImageKind::CubinSm90),
            8 => Some(ImageKind::CubinSm80),
            m if m > 9 => Some(ImageKind::PtxCompute80),
            _ => None,
        }
    }

    pub fn image(self, m: &'static EmbeddedModule) -> &'static EmbeddedImage {
        match self {
            ImageKind::CubinSm80 => &m.cubin_sm80,
            ImageKind::CubinSm90 => &m.cubin_sm90,
            ImageKind::PtxCompute80 => &m.ptx_compute80,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ImageKind::CubinSm80 => "sm_80 cubin",
            ImageKind::CubinSm90 => "sm_90 cubin",
            ImageKind::PtxCompute80 => "compute_80 PTX (JIT)",
        }
    }
}

/// True when this build embeds device images for every kernel source.
pub fn cuda_kernels_embedded() -> bool {
    !EMBEDDED_MODULES.is_empty()
        && EMBEDDED_MODULES.iter().all(|m| {
            !m.cubin_sm80.is_empty() && !m.cubin_sm90.is_empty() && !m.ptx_compute80.is_empty()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_choice_follows_compute_capability() {
        assert_eq!(
            ImageKind::for_compute_capability(9, 0),
            Some(ImageKind::CubinSm90)
        );
        assert_eq!(
            ImageKind::for_compute_capability(8, 6),
            Some(ImageKind::CubinSm80)
        );
        assert_eq!(
            ImageKind::for_compute_capability(10, 0),
            Some(ImageKind::PtxCompute80)
        );
        assert_eq!(ImageKind::for_compute_capability(7, 5), None);
    }

    #[test]
    fn every_module_lists_its_kernels() {
        assert!(EMBEDDED_MODULES.iter().any(|m| m.name == "msm"));
        for m in EMBEDDED_MODULES {
            assert!(!m.kernels.is_empty(), "module {} exports no kernel", m.name);
        }
    }

    /// CI sets PROOFRACK_REQUIRE_KERNELS=1: then every kernel source must have non-empty
    /// images for every target (the build itself fails without NVRTC in that case).
    #[test]
    fn images_present_when_required() {
        if std::env::var("PROOFRACK_REQUIRE_KERNELS").as_deref() != Ok("1") {
            return;
        }
        assert!(
            cuda_kernels_embedded(),
            "PROOFRACK_REQUIRE_KERNELS=1 but images are missing"
        );
        for m in EMBEDDED_MODULES {
            for (image, what) in [
                (&m.cubin_sm80, "sm_80 cubin"),
                (&m.cubin_sm90, "sm_90 cubin"),
            ] {
                let bytes = image.inflate().expect("embedded image inflates");
                assert!(bytes.len() > 1000, "{}: {what} too small", m.name);
                // ELF magic: a cubin, not PTX text or garbage.
                assert_eq!(
                    &bytes[..4],
                    b"\x7fELF",
                    "{}: {what} is not an ELF image",
                    m.name
                );
                assert!(
                    image.deflated.len() < image.len,
                    "{}: {what} is embedded uncompressed",
                    m.name
                );
            }
            let ptx = m.ptx_compute80.inflate().expect("embedded PTX inflates");
            assert_eq!(ptx.last(), Some(&0), "{}: PTX must end with NUL", m.name);
            let ptx = std::str::from_utf8(&ptx[..ptx.len() - 1]).expect("PTX is text");
            for k in m.kernels {
                assert!(
                    ptx.contains(&format!(".entry {k}(")),
                    "{}: PTX lacks kernel {k}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn damaged_image_is_refused_not_loaded() {
        let deflated: &'static [u8] = Box::leak(
            miniz_oxide::deflate::compress_to_vec(b"0123456789abcdef", 9).into_boxed_slice(),
        );
        let good = EmbeddedImage { deflated, len: 16 };
        assert_eq!(good.inflate().expect("inflates"), b"0123456789abcdef");
        let wrong_len = EmbeddedImage { deflated, len: 15 };
        assert!(wrong_len.inflate().is_err());
        let truncated = EmbeddedImage {
            deflated: &deflated[..deflated.len() / 2],
            len: 16,
        };
        assert!(truncated.inflate().is_err());
    }
}
