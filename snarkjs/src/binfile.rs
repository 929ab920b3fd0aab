//! The iden3 section container (`binfileutils`): 4-byte magic, u32 version, u32 section
//! count, then per section u32 id, u64 byte length, payload. All little-endian. Sections may
//! appear in any order (`zkey new` writes 1,2,4,3,9,8,5,6,7,10).

use std::collections::BTreeMap;
use std::ops::Range;

use crate::{Result, SnarkjsError};

/// Most sections a file may declare. zkeys have 10 (PLONK 14, FFLONK 17); more means garbage,
/// and the cap bounds the work done on a hostile header.
pub const MAX_SECTIONS: u32 = 64;

/// A parsed container: where each section's payload lies in `bytes`.
pub struct BinFile<'a> {
    pub file: &'static str,
    pub version: u32,
    bytes: &'a [u8],
    sections: BTreeMap<u32, Range<usize>>,
    names: fn(u32) -> String,
}

impl<'a> BinFile<'a> {
    /// Scans the section table. `names` gives a section id its name in error messages.
    pub fn parse(
        bytes: &'a [u8],
        file: &'static str,
        magic: &[u8; 4],
        max_version: u32,
        names: fn(u32) -> String,
    ) -> Result<Self> {
        let mut r = Reader::new(bytes, file, "the header".to_string());
        let found: [u8; 4] = r.take(4)?.try_into().expect("4 bytes");
        if &found != magic {
            return Err(SnarkjsError::BadMagic {
                expected: file,
                found,
            });
        }
        let version = r.u32()?;
        if version == 0 || version > max_version {
            return Err(SnarkjsError::UnsupportedVersion {
                file,
                found: version,
                supported: max_version,
            });
        }
        let count = r.u32()?;
        if count > MAX_SECTIONS {
            return Err(SnarkjsError::SectionLength {
                file,
                section: "the section table".to_string(),
                found: count as u64,
                expected: MAX_SECTIONS as u64,
            });
        }
        let mut sections = BTreeMap::new();
        for _ in 0..count {
            r.section = "the section table".to_string();
            let id = r.u32()?;
            let len = r.u64()?;
            r.section = names(id);
            let start = r.pos;
            r.skip(len)?;
            // a repeated id: the first one wins, as in binfileutils
            sections.entry(id).or_insert(start..r.pos);
        }
        Ok(BinFile {
            file,
            version,
            bytes,
            sections,
            names,
        })
    }

    /// A reader over section `id`'s payload, or `MissingSection`.
    pub fn section(&self, id: u32) -> Result<Reader<'a>> {
        let range = self
            .sections
            .get(&id)
            .ok_or_else(|| SnarkjsError::MissingSection {
                file: self.file,
                section: (self.names)(id),
            })?;
        Ok(Reader::new(
            &self.bytes[range.clone()],
            self.file,
            (self.names)(id),
        ))
    }
}

/// Little-endian reads over one section, with truncation errors that name the section.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    file: &'static str,
    pub section: String,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], file: &'static str, section: String) -> Self {
        Reader {
            bytes,
            pos: 0,
            file,
            section,
        }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn truncated(&self, needed: u64) -> SnarkjsError {
        SnarkjsError::Truncated {
            file: self.file,
            section: self.section.clone(),
            needed,
            available: self.remaining() as u64,
        }
    }

    pub fn skip(&mut self, n: u64) -> Result<()> {
        if n > self.remaining() as u64 {
            return Err(self.truncated(n));
        }
        self.pos += n as usize;
        Ok(())
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.truncated(n as u64));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    /// Fails unless exactly `n` bytes are left, for sections of known size.
    pub fn expect_len(&self, expected: u64) -> Result<()> {
        let found = self.remaining() as u64;
        if found < expected {
            return Err(self.truncated(expected));
        }
        if found != expected {
            return Err(SnarkjsError::SectionLength {
                file: self.file,
                section: self.section.clone(),
                found,
                expected,
            });
        }
        Ok(())
    }
}

/// Checks a container's header and section table from a reader, seeking over the sections
/// instead of reading them: the magic, the version, and that every section lies within the
/// `len` bytes the file has. For a file received from a peer, before it is read into memory:
/// garbage is refused at its first bytes, whatever its size. Agrees with [`BinFile::parse`]
/// (which the full read runs after it) on every header it refuses.
pub fn check_layout<R: std::io::Read + std::io::Seek>(
    r: &mut R,
    len: u64,
    file: &'static str,
    magic: &[u8; 4],
    max_version: u32,
    names: fn(u32) -> String,
) -> Result<()> {
    let mut pos = 0u64;
    let read = |r: &mut R, pos: &mut u64, buf: &mut [u8], section: String| {
        let needed = buf.len() as u64;
        if len.saturating_sub(*pos) < needed {
            return Err(SnarkjsError::Truncated {
                file,
                section,
                needed,
                available: len.saturating_sub(*pos),
            });
        }
        r.read_exact(buf).map_err(|_| SnarkjsError::Truncated {
            file,
            section: section.clone(),
            needed,
            available: len.saturating_sub(*pos),
        })?;
        *pos += needed;
        Ok(())
    };
    let mut head = [0u8; 12];
    read(r, &mut pos, &mut head[..4], "the header".into())?;
    let found: [u8; 4] = head[..4].try_into().expect("4 bytes");
    if &found != magic {
        return Err(SnarkjsError::BadMagic {
            expected: file,
            found,
        });
    }
    read(r, &mut pos, &mut head[4..12], "the header".into())?;
    let version = u32::from_le_bytes(head[4..8].try_into().expect("4"));
    if version == 0 || version > max_version {
        return Err(SnarkjsError::UnsupportedVersion {
            file,
            found: version,
            supported: max_version,
        });
    }
    let count = u32::from_le_bytes(head[8..12].try_into().expect("4"));
    if count > MAX_SECTIONS {
        return Err(SnarkjsError::SectionLength {
            file,
            section: "the section table".to_string(),
            found: count as u64,
            expected: MAX_SECTIONS as u64,
        });
    }
    for _ in 0..count {
        let mut entry = [0u8; 12];
        read(r, &mut pos, &mut entry, "the section table".into())?;
        let id = u32::from_le_bytes(entry[..4].try_into().expect("4"));
        let section_len = u64::from_le_bytes(entry[4..].try_into().expect("8"));
        let available = len.saturating_sub(pos);
        if section_len > available {
            return Err(SnarkjsError::Truncated {
                file,
                section: names(id),
                needed: section_len,
                available,
            });
        }
        pos += section_len;
        r.seek(std::io::SeekFrom::Start(pos))
            .map_err(|_| SnarkjsError::Truncated {
                file,
                section: names(id),
                needed: section_len,
                available,
            })?;
    }
    Ok(())
}

/// Writes a container: magic, version, then the sections in the order given.
pub fn write(magic: &[u8; 4], version: u32, sections: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let total: usize = sections.iter().map(|(_, s)| 12 + s.len()).sum();
    let mut out = Vec::with_capacity(12 + total);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for (id, payload) in sections {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(id: u32) -> String {
        format!("section {id}")
    }

    #[test]
    fn sections_in_any_order_and_truncation_names_the_section() {
        let bytes = write(b"test", 1, &[(2, vec![1, 2, 3]), (1, vec![9; 8])]);
        let f = BinFile::parse(&bytes, "test", b"test", 1, names).unwrap();
        assert_eq!(f.section(1).unwrap().take(8).unwrap(), &[9; 8]);
        assert_eq!(f.section(2).unwrap().remaining(), 3);
        assert!(matches!(
            f.section(3),
            Err(SnarkjsError::MissingSection { .. })
        ));
        let cut = &bytes[..bytes.len() - 1];
        let err = BinFile::parse(cut, "test", b"test", 1, names)
            .err()
            .unwrap();
        assert!(err.to_string().contains("section 1"), "{err}");
        assert!(matches!(
            BinFile::parse(&bytes, "wtns", b"wtns", 1, names),
            Err(SnarkjsError::BadMagic { .. })
        ));
        assert!(matches!(
            BinFile::parse(&bytes, "test", b"test", 0, names),
            Err(SnarkjsError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn every_prefix_is_an_error_not_a_panic() {
        let bytes = write(b"test", 1, &[(1, vec![7; 40]), (2, vec![1; 5])]);
        for n in 0..bytes.len() {
            assert!(BinFile::parse(&bytes[..n], "test", b"test", 1, names).is_err());
            let mut r = std::io::Cursor::new(&bytes[..n]);
            assert!(check_layout(&mut r, n as u64, "test", b"test", 1, names).is_err());
        }
        let mut r = std::io::Cursor::new(&bytes[..]);
        check_layout(&mut r, bytes.len() as u64, "test", b"test", 1, names).unwrap();
    }

    /// The layout check and the full parse agree on every header (the fuzz targets drive
    /// this with arbitrary bytes; here the cases found by hand).
    #[test]
    fn layout_check_agrees_with_the_parser() {
        let good = write(b"test", 1, &[(1, vec![7; 40]), (1, vec![1; 5])]);
        let mut huge = good.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut many = good.clone();
        many[8..12].copy_from_slice(&(MAX_SECTIONS + 1).to_le_bytes());
        for bytes in [
            good,
            huge,
            many,
            b"tes".to_vec(),
            b"nope\x01\0\0\0\0\0\0\0".to_vec(),
        ] {
            let parsed = BinFile::parse(&bytes, "test", b"test", 1, names).map(|_| ());
            let mut r = std::io::Cursor::new(&bytes[..]);
            let checked = check_layout(&mut r, bytes.len() as u64, "test", b"test", 1, names);
            assert_eq!(
                parsed.map_err(|e| e.to_string()),
                checked.map_err(|e| e.to_string()),
                "{bytes:?}"
            );
        }
    }
}
