use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "proofrack-key-cache-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn limits(max_total_bytes: u64) -> KeyCacheLimits {
    KeyCacheLimits {
        max_total_bytes,
        max_key_bytes: MAX_KEY_BYTES,
    }
}

/// A distinct "key" of `len` bytes.
fn key(tag: u8, len: usize) -> (KeyId, Vec<u8>) {
    let bytes: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ tag).collect();
    (key_id_of(&bytes), bytes)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_streamed_key_is_read_back_verified() {
    let tmp = TempDir::new("roundtrip");
    let mut cache = KeyCache::open(&tmp.0, limits(1 << 20)).unwrap();
    let (id, bytes) = key(1, 10_000);
    assert_eq!(cache.get(&id, UnixMillis(1)).unwrap(), KeyLookup::Miss);

    let mut w = cache.insert_streaming(id).unwrap();
    for chunk in bytes.chunks(777) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.written_bytes(), 10_000);
    let path = cache.commit(w, UnixMillis(2)).unwrap();
    assert_eq!(path, tmp.0.join(format!("{}.key", id.to_hex())));
    assert_eq!(files_in(&tmp.0), vec![format!("{}.key", id.to_hex())]);
    assert!(cache.contains(&id));
    assert_eq!(cache.total_bytes(), 10_000);
    assert_eq!(
        cache.get(&id, UnixMillis(3)).unwrap(),
        KeyLookup::Hit(bytes)
    );
}

#[test]
fn a_corrupt_file_is_deleted_and_reported_then_refetched() {
    let tmp = TempDir::new("corrupt");
    let mut cache = KeyCache::open(&tmp.0, limits(1 << 20)).unwrap();
    let (id, bytes) = key(2, 4096);
    let path = cache.insert(id, &bytes, UnixMillis(1)).unwrap();

    let mut damaged = bytes.clone();
    damaged[100] ^= 0x01;
    fs::write(&path, &damaged).unwrap();

    let (lookup, logs) = crate::test_log::capture(|| cache.get(&id, UnixMillis(2)).unwrap());
    assert_eq!(
        lookup,
        KeyLookup::Corrupt {
            found: key_id_of(&damaged)
        }
    );
    assert!(
        logs.iter()
            .any(|(l, m)| *l == tracing::Level::WARN && m.contains("corrupt")),
        "{logs:?}"
    );
    assert!(!path.exists(), "the corrupt file must be deleted");
    assert!(!cache.contains(&id));
    assert_eq!(cache.total_bytes(), 0);
    assert_eq!(cache.get(&id, UnixMillis(3)).unwrap(), KeyLookup::Miss);

    // Refetch.
    cache.insert(id, &bytes, UnixMillis(4)).unwrap();
    assert_eq!(
        cache.get(&id, UnixMillis(5)).unwrap(),
        KeyLookup::Hit(bytes)
    );
}

#[test]
fn a_truncated_file_counts_as_corrupt() {
    let tmp = TempDir::new("truncated");
    let mut cache = KeyCache::open(&tmp.0, limits(1 << 20)).unwrap();
    let (id, bytes) = key(3, 4096);
    let path = cache.insert(id, &bytes, UnixMillis(1)).unwrap();
    fs::write(&path, &bytes[..1000]).unwrap();
    assert!(matches!(
        cache.get(&id, UnixMillis(2)).unwrap(),
        KeyLookup::Corrupt { .. }
    ));
    assert!(!path.exists());
}

#[test]
fn a_stream_with_the_wrong_bytes_is_refused_and_leaves_nothing() {
    let tmp = TempDir::new("mismatch");
    let mut cache = KeyCache::open(&tmp.0, limits(1 << 20)).unwrap();
    let (id, bytes) = key(4, 2048);
    let mut w = cache.insert_streaming(id).unwrap();
    w.write_all(&bytes[..2047]).unwrap(); // one byte short
    let err = cache.commit(w, UnixMillis(1)).unwrap_err();
    assert!(
        matches!(err, KeyCacheError::HashMismatch { expected, .. } if expected == id),
        "{err}"
    );
    assert!(err.to_string().contains("fetch the key again"));
    assert_eq!(files_in(&tmp.0), Vec::<String>::new());
    assert!(!cache.contains(&id));
}

#[test]
fn an_abandoned_stream_deletes_its_partial_file() {
    let tmp = TempDir::new("abandoned");
    let cache = KeyCache::open(&tmp.0, limits(1 << 20)).unwrap();
    let (id, bytes) = key(5, 2048);
    let mut w = cache.insert_streaming(id).unwrap();
    w.write_all(&bytes[..1000]).unwrap();
    w.flush().unwrap();
    assert_eq!(
        files_in(&tmp.0).len(),
        1,
        "the partial file exists while streaming"
    );
    assert!(files_in(&tmp.0)[0].starts_with(PARTIAL_PREFIX));
    drop(w);
    assert_eq!(files_in(&tmp.0), Vec::<String>::new());
}

#[test]
fn partial_files_left_by_a_crash_are_deleted_at_open_and_stray_files_kept() {
    let tmp = TempDir::new("crash");
    fs::create_dir_all(&tmp.0).unwrap();
    let (id, bytes) = key(6, 512);
    fs::write(
        tmp.0.join(format!("{PARTIAL_PREFIX}{}-1-0", id.to_hex())),
        &bytes[..100],
    )
    .unwrap();
    fs::write(tmp.0.join(format!("{}.key", id.to_hex())), &bytes).unwrap();
    fs::write(tmp.0.join("README"), b"not a key").unwrap();
    fs::write(
        tmp.0.join(format!("{}.key", id.to_hex().to_uppercase())),
        b"x",
    )
    .unwrap();
    let mut cache = KeyCache::open(&tmp.0, limits(1 << 20)).unwrap();
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.total_bytes(), 512);
    assert!(files_in(&tmp.0)
        .iter()
        .all(|n| !n.starts_with(PARTIAL_PREFIX)));
    assert!(tmp.0.join("README").exists());
    assert_eq!(
        cache.get(&id, UnixMillis(1)).unwrap(),
        KeyLookup::Hit(bytes)
    );
}

#[test]
fn a_stream_past_the_key_limit_is_refused() {
    let tmp = TempDir::new("too-large");
    let mut cache = KeyCache::open(
        &tmp.0,
        KeyCacheLimits {
            max_total_bytes: 1 << 20,
            max_key_bytes: 1000,
        },
    )
    .unwrap();
    let (id, bytes) = key(7, 1001);
    let err = cache.insert(id, &bytes, UnixMillis(1)).unwrap_err();
    assert!(
        matches!(
            err,
            KeyCacheError::TooLarge {
                max_key_bytes: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(files_in(&tmp.0), Vec::<String>::new());
    let (id, bytes) = key(7, 1000);
    cache.insert(id, &bytes, UnixMillis(2)).unwrap();
}

#[test]
fn the_least_recently_used_key_is_evicted_first() {
    let tmp = TempDir::new("lru");
    let mut cache = KeyCache::open(&tmp.0, limits(3000)).unwrap();
    let (a, a_bytes) = key(10, 1000);
    let (b, b_bytes) = key(11, 1000);
    let (c, c_bytes) = key(12, 1000);
    let (d, d_bytes) = key(13, 1000);
    cache.insert(a, &a_bytes, UnixMillis(1_000)).unwrap();
    cache.insert(b, &b_bytes, UnixMillis(2_000)).unwrap();
    cache.insert(c, &c_bytes, UnixMillis(3_000)).unwrap();
    assert_eq!(cache.total_bytes(), 3000);
    // Reading a makes b the least recently used.
    assert!(matches!(
        cache.get(&a, UnixMillis(4_000)).unwrap(),
        KeyLookup::Hit(_)
    ));
    cache.insert(d, &d_bytes, UnixMillis(5_000)).unwrap();
    assert!(!cache.contains(&b) && !cache.path_of(&b).exists());
    assert!(cache.contains(&a) && cache.contains(&c) && cache.contains(&d));
    assert_eq!(cache.total_bytes(), 3000);

    // The order survives a restart (file mtimes), and a smaller bound evicts at open:
    // c (3 s) is now the oldest, then a (4 s).
    drop(cache);
    let cache = KeyCache::open(&tmp.0, limits(2000)).unwrap();
    assert!(!cache.contains(&c));
    assert!(cache.contains(&a) && cache.contains(&d));
}

#[test]
fn a_key_larger_than_the_cache_is_kept_alone() {
    let tmp = TempDir::new("oversized");
    let mut cache = KeyCache::open(&tmp.0, limits(1000)).unwrap();
    let (a, a_bytes) = key(20, 600);
    let (big, big_bytes) = key(21, 1500);
    cache.insert(a, &a_bytes, UnixMillis(1)).unwrap();
    cache.insert(big, &big_bytes, UnixMillis(2)).unwrap();
    assert!(!cache.contains(&a));
    assert_eq!(
        cache.get(&big, UnixMillis(3)).unwrap(),
        KeyLookup::Hit(big_bytes)
    );
}

#[test]
fn eviction_victims_are_oldest_first_and_spare_the_kept_key() {
    let mut index = LruIndex::default();
    let id = |n: u8| KeyId([n; 32]);
    index.upsert(id(1), 10, UnixMillis(30));
    index.upsert(id(2), 10, UnixMillis(10));
    index.upsert(id(3), 10, UnixMillis(20));
    index.upsert(id(3), 15, UnixMillis(40)); // re-insert replaces the size
    assert_eq!(index.total_bytes, 35);
    assert_eq!(index.eviction_victims(35, None), Vec::<KeyId>::new());
    assert_eq!(index.eviction_victims(25, None), vec![id(2)]);
    assert_eq!(index.eviction_victims(15, None), vec![id(2), id(1)]);
    assert_eq!(index.eviction_victims(14, None), vec![id(2), id(1), id(3)]);
    assert_eq!(index.eviction_victims(0, Some(&id(2))), vec![id(1), id(3)]);
    index.remove(&id(1));
    assert_eq!(index.total_bytes, 25);
}

#[test]
fn removing_a_key_deletes_its_file() {
    let tmp = TempDir::new("remove");
    let mut cache = KeyCache::open(&tmp.0, limits(1 << 20)).unwrap();
    let (id, bytes) = key(30, 100);
    cache.insert(id, &bytes, UnixMillis(1)).unwrap();
    assert!(cache.remove(&id).unwrap());
    assert!(!cache.remove(&id).unwrap());
    assert!(cache.is_empty());
    assert_eq!(files_in(&tmp.0), Vec::<String>::new());
}

#[test]
fn an_unwritable_directory_is_a_typed_error_that_names_the_path() {
    let tmp = TempDir::new("unwritable");
    fs::create_dir_all(&tmp.0).unwrap();
    let file_as_dir = tmp.0.join("not-a-dir");
    fs::write(&file_as_dir, b"x").unwrap();
    let err = KeyCache::open(&file_as_dir, limits(1)).unwrap_err();
    assert!(matches!(err, KeyCacheError::Io { .. }));
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
