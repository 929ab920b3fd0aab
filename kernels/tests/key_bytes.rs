//! Proving-key and verifying-key bytes: round trips, the content address, and clear errors on
//! truncated or corrupt input (never a panic).

use ark_bn254::{Fq2, G2Affine};
use ark_ff::UniformRand;
use ark_std::rand::{rngs::StdRng, Rng, SeedableRng};
use proofrack_kernels::circuits::Circuit;
use proofrack_kernels::groth16::{
    generate_key_with_rng, key_id, vk_from_bytes, vk_to_bytes, KeyError, PointCheck, ProvingKey,
    R1csError,
};

fn small_key(seed: u64) -> ProvingKey {
    let circuit = Circuit::mimc(4).unwrap();
    generate_key_with_rng(&circuit.r1cs(), &mut StdRng::seed_from_u64(seed)).unwrap()
}

/// Offset of a section's count field, found by walking the layout of `key_bytes.rs`.
fn count_offset(key: &ProvingKey, section: usize) -> usize {
    let p = key.parts();
    let header = 8 + 4 + 32 + 3 * 64 + 3 * 128;
    let sizes = [
        p.ic.len() * 64,
        p.a_query.len() * 64,
        p.b_g1_query.len() * 64,
        p.b_g2_query.len() * 128,
        p.h_query.len() * 64,
        p.l_query.len() * 64,
    ];
    header + sizes[..section].iter().map(|s| s + 8).sum::<usize>()
}

#[test]
fn round_trip_is_exact_and_the_id_is_the_hash_of_the_bytes() {
    let key = small_key(1);
    let bytes = key.to_bytes();
    assert_eq!(bytes.len(), key.byte_len());
    assert_eq!(bytes, key.to_bytes(), "serialisation is deterministic");
    for check in [PointCheck::Full, PointCheck::OnCurve, PointCheck::None] {
        assert_eq!(ProvingKey::from_bytes(&bytes, check).unwrap(), key);
    }
    assert_eq!(key.id(), key_id(&bytes));
    assert_eq!(
        ProvingKey::from_bytes_with_id(&bytes, &key.id()).unwrap(),
        key
    );
    assert_ne!(small_key(2).id(), key.id());
}

#[test]
fn every_truncation_is_a_truncated_error() {
    let bytes = small_key(3).to_bytes();
    for cut in 0..bytes.len() {
        match ProvingKey::from_bytes(&bytes[..cut], PointCheck::OnCurve) {
            Err(KeyError::Truncated { .. }) => {}
            Err(KeyError::BadMagic) if cut < 8 => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn header_and_count_corruption_name_the_problem() {
    let key = small_key(4);
    let bytes = key.to_bytes();
    let parse = |b: &[u8]| ProvingKey::from_bytes(b, PointCheck::Full);

    let mut b = bytes.clone();
    b.push(0);
    assert!(matches!(
        parse(&b),
        Err(KeyError::TrailingBytes { count: 1 })
    ));

    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(parse(&b), Err(KeyError::BadMagic)));

    let mut b = bytes.clone();
    b[8] = 2;
    assert!(matches!(
        parse(&b),
        Err(KeyError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    ));

    // domain_size field
    let mut b = bytes.clone();
    b[36] ^= 1;
    assert!(matches!(parse(&b), Err(KeyError::DomainMismatch { .. })));

    // num_constraints so large the domain is unsupported
    let mut b = bytes.clone();
    b[28..36].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        parse(&b),
        Err(KeyError::Shape(R1csError::DomainTooLarge { .. }))
    ));

    for (i, section) in [
        "ic",
        "a_query",
        "b_g1_query",
        "b_g2_query",
        "h_query",
        "l_query",
    ]
    .iter()
    .enumerate()
    {
        let mut b = bytes.clone();
        let at = count_offset(&key, i);
        let count = u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        b[at..at + 8].copy_from_slice(&(count + 1).to_le_bytes());
        match parse(&b) {
            Err(KeyError::CountMismatch {
                section: s,
                found,
                expected,
            }) => {
                assert_eq!((s, found, expected), (*section, count + 1, count));
            }
            other => panic!("{section}: {other:?}"),
        }
        // A huge count must not allocate: it is refused before reading points.
        b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&b).is_err());
    }
}

#[test]
fn corrupt_points_scalars_and_indices_are_caught() {
    let key = small_key(5);
    let bytes = key.to_bytes();
    let h_start = count_offset(&key, 4) + 8;

    // A flipped coordinate byte: off the curve. Caught by point checks, or by the id.
    let mut b = bytes.clone();
    b[h_start + 70] ^= 0x10; // inside h_query[1].x
    for check in [PointCheck::Full, PointCheck::OnCurve] {
        match ProvingKey::from_bytes(&b, check) {
            Err(KeyError::BadPoint {
                section: "h_query",
                index: 1,
                reason,
            }) => assert_eq!(reason, "not on the curve"),
            other => panic!("{other:?}"),
        }
    }
    assert!(ProvingKey::from_bytes(&b, PointCheck::None).is_ok());
    assert!(matches!(
        ProvingKey::from_bytes_with_id(&b, &key.id()),
        Err(KeyError::IdMismatch { .. })
    ));

    // Matrix A: entries u64, offsets, cols, coeffs. Corrupt the first column and coefficient.
    let a_start = count_offset(&key, 6);
    let rows = key.num_constraints();
    let entries = key.parts().a.num_entries();
    let cols = a_start + 8 + 4 * (rows + 1);
    let mut b = bytes.clone();
    b[cols..cols + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        ProvingKey::from_bytes(&b, PointCheck::Full),
        Err(KeyError::Shape(R1csError::ColumnOutOfRange {
            row: 0,
            col: u32::MAX,
            ..
        }))
    ));
    let coeffs = cols + 4 * entries;
    let mut b = bytes.clone();
    b[coeffs..coeffs + 32].fill(0xff);
    assert!(matches!(
        ProvingKey::from_bytes(&b, PointCheck::Full),
        Err(KeyError::BadScalar {
            section: "matrix A",
            index: 0
        })
    ));
    let mut b = bytes.clone();
    b[a_start + 8..a_start + 12].copy_from_slice(&5u32.to_le_bytes()); // first offset must be 0
    assert!(matches!(
        ProvingKey::from_bytes(&b, PointCheck::Full),
        Err(KeyError::Shape(R1csError::BadRowOffsets { .. }))
    ));
}

#[test]
fn a_g2_point_outside_the_subgroup_needs_the_full_check() {
    let key = small_key(6);
    let mut rng = StdRng::seed_from_u64(7);
    // A point on the twist with a random x is almost surely outside the order-r subgroup.
    let off_subgroup = loop {
        let x = Fq2::rand(&mut rng);
        if let Some(p) = G2Affine::get_point_from_x_unchecked(x, true) {
            if !p.is_in_correct_subgroup_assuming_on_curve() {
                break p;
            }
        }
    };
    let mut parts = key.into_parts();
    parts.b_g2_query[2] = off_subgroup;
    let bytes = ProvingKey::from_parts(parts).unwrap().to_bytes();
    assert!(ProvingKey::from_bytes(&bytes, PointCheck::OnCurve).is_ok());
    match ProvingKey::from_bytes(&bytes, PointCheck::Full) {
        Err(KeyError::BadPoint {
            section: "b_g2_query",
            index: 2,
            reason,
        }) => {
            assert_eq!(reason, "not in the prime-order subgroup")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn random_byte_corruption_never_panics_or_returns_the_same_key() {
    let key = small_key(8);
    let bytes = key.to_bytes();
    let mut rng = StdRng::seed_from_u64(9);
    for round in 0..3000 {
        let mut b = bytes.clone();
        let flips = rng.gen_range(1..4);
        for _ in 0..flips {
            let i = rng.gen_range(0..b.len());
            b[i] ^= 1u8 << rng.gen_range(0..8);
        }
        // The G2 subgroup check is the slow part; every 10th round runs it.
        let check = if round % 10 == 0 {
            PointCheck::Full
        } else {
            PointCheck::OnCurve
        };
        if let Ok(k) = ProvingKey::from_bytes(&b, check) {
            assert_ne!(k, key);
        }
    }
}

#[test]
fn verifying_key_bytes_round_trip_and_reject_bad_input() {
    let key = small_key(10);
    let vk = key.verifying_key();
    let bytes = vk_to_bytes(&vk);
    assert_eq!(vk_from_bytes(&bytes).unwrap(), vk);
    assert!(matches!(
        vk_from_bytes(&bytes[..bytes.len() - 1]),
        Err(KeyError::VerifyingKeyEncoding(_))
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        vk_from_bytes(&long),
        Err(KeyError::TrailingBytes { count: 1 })
    ));
    let mut bad = bytes.clone();
    bad[..31].fill(0xff); // alpha_g1.x ≥ q
    assert!(vk_from_bytes(&bad).is_err());
}

#[test]
fn from_parts_checks_every_length_against_the_shape() {
    use proofrack_kernels::groth16::SparseMatrix;
    let parts = small_key(11).into_parts();
    let expect_count = |mut p: proofrack_kernels::groth16::ProvingKeyParts, section: &str| {
        match ProvingKey::from_parts(p.clone()) {
            Err(KeyError::CountMismatch { section: s, .. }) => assert_eq!(s, section),
            other => panic!("{section}: {other:?}"),
        }
        p.num_variables = 0;
        assert!(ProvingKey::from_parts(p).is_err());
    };
    let mut p = parts.clone();
    p.h_query.pop();
    expect_count(p, "h_query");
    let mut p = parts.clone();
    p.l_query.push(p.l_query[0]);
    expect_count(p, "l_query");
    let mut p = parts.clone();
    p.ic.pop();
    expect_count(p, "ic");
    let mut p = parts.clone();
    p.b_g2_query.pop();
    expect_count(p, "b_g2_query");

    let mut p = parts.clone();
    p.b = SparseMatrix::new();
    assert!(matches!(
        ProvingKey::from_parts(p),
        Err(KeyError::Shape(R1csError::RowCountMismatch { .. }))
    ));
    let mut p = parts.clone();
    let mut a = SparseMatrix::new();
    for i in 0..parts.a.num_rows() {
        a.push_row(
            parts
                .a
                .row(i)
                .map(|(c, v)| (c, if i == 3 { v + 100 } else { v })),
        );
    }
    p.a = a;
    assert!(matches!(
        ProvingKey::from_parts(p),
        Err(KeyError::Shape(R1csError::ColumnOutOfRange { row: 3, .. }))
    ));
    assert!(ProvingKey::from_parts(parts).is_ok());
}
