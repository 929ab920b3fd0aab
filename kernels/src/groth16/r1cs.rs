//! Rank-1 constraint systems in the compact form the prover and the key setup read.
//!
//! Variables are numbered as circom and arkworks number them: 0 is the constant 1, then the
//! `num_public` public signals, then the private ones. A constraint row `i` says
//! `⟨A_i, w⟩ · ⟨B_i, w⟩ = ⟨C_i, w⟩`. The matrices hold only the R1CS constraints; the
//! `num_public + 1` extra rows `a[m + i] = w_i` that make the public inputs linearly
//! independent (libsnark, snarkjs and ark-circom all add them) are added by the reduction
//! (`reduction.rs`) and the setup, never stored.

use ark_ff::{Field, Zero};
use rayon::prelude::*;

use crate::curve::Fr;

/// Largest evaluation domain (number of constraints + public inputs + 1, rounded up to a
/// power of two) we prove over. The circom-style reduction needs a primitive 2n-th root of
/// unity; BN254's Fr has 2-adicity 28, and the `Backend` trait caps NTTs at 2^26, so 2^26 is
/// the largest n that every backend accepts (and it keeps us clear of snarkjs' special case
/// for n = 2^28, where the coset shift is not ω_2n).
pub const MAX_DOMAIN_LOG2: u32 = 26;

/// Errors in the shape of a constraint system or a matrix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum R1csError {
    #[error("matrix row {row} refers to variable {col}, but there are only {num_variables} variables; the matrices do not belong to this variable count")]
    ColumnOutOfRange {
        row: usize,
        col: u32,
        num_variables: usize,
    },
    #[error("matrix row offsets are not non-decreasing or do not end at the entry count ({detail}); the matrix bytes are corrupt")]
    BadRowOffsets { detail: String },
    #[error("matrices A, B, C have {a}, {b}, {c} rows; they must have one row per constraint")]
    RowCountMismatch { a: usize, b: usize, c: usize },
    #[error("{num_public} public inputs need at least {} variables, got {num_variables}", num_public + 1)]
    TooFewVariables {
        num_public: usize,
        num_variables: usize,
    },
    #[error("{num_constraints} constraints and {num_public} public inputs need a domain of 2^{log2}, above the supported 2^{MAX_DOMAIN_LOG2}; split the circuit")]
    DomainTooLarge {
        num_constraints: usize,
        num_public: usize,
        log2: u32,
    },
    #[error("constraint count {0} does not fit the 32-bit indices used here")]
    TooManyEntries(usize),
}

/// A sparse matrix in compressed-row form: row `i` is entries `row_offsets[i]..row_offsets[i+1]`
/// of `cols`/`coeffs`. One allocation per array rather than one per row, so a 2^20-row matrix
/// loads and serialises as three flat arrays.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SparseMatrix {
    row_offsets: Vec<u32>,
    cols: Vec<u32>,
    coeffs: Vec<Fr>,
}

impl SparseMatrix {
    /// An empty matrix with no rows.
    pub fn new() -> Self {
        SparseMatrix {
            row_offsets: vec![0],
            cols: Vec::new(),
            coeffs: Vec::new(),
        }
    }

    /// An empty matrix with room for `rows` rows and `entries` entries.
    pub fn with_capacity(rows: usize, entries: usize) -> Self {
        let mut row_offsets = Vec::with_capacity(rows + 1);
        row_offsets.push(0);
        SparseMatrix {
            row_offsets,
            cols: Vec::with_capacity(entries),
            coeffs: Vec::with_capacity(entries),
        }
    }

    /// Builds from the three arrays, checking that the offsets are consistent.
    /// Column ranges are checked against a variable count by [`R1cs::new`].
    pub fn from_parts(
        row_offsets: Vec<u32>,
        cols: Vec<u32>,
        coeffs: Vec<Fr>,
    ) -> Result<Self, R1csError> {
        let bad = |detail: String| Err(R1csError::BadRowOffsets { detail });
        if cols.len() != coeffs.len() {
            return bad(format!(
                "{} columns but {} coefficients",
                cols.len(),
                coeffs.len()
            ));
        }
        if row_offsets.first() != Some(&0) {
            return bad("first offset is not 0".to_string());
        }
        if row_offsets.windows(2).any(|w| w[0] > w[1]) {
            return bad("offsets decrease".to_string());
        }
        if *row_offsets.last().unwrap_or(&0) as usize != cols.len() {
            return bad(format!("last offset is not {}", cols.len()));
        }
        Ok(SparseMatrix {
            row_offsets,
            cols,
            coeffs,
        })
    }

    /// Appends a row of `(coefficient, variable)` terms. Zero coefficients are dropped.
    pub fn push_row(&mut self, terms: impl IntoIterator<Item = (Fr, u32)>) {
        for (coeff, col) in terms {
            if !coeff.is_zero() {
                self.cols.push(col);
                self.coeffs.push(coeff);
            }
        }
        let end = u32::try_from(self.cols.len()).expect("sparse matrix above 2^32 entries");
        self.row_offsets.push(end);
    }

    /// From arkworks' row-of-pairs form (`ark_relations::gr1cs::Matrix`).
    pub fn from_ark(rows: &[Vec<(Fr, usize)>]) -> Result<Self, R1csError> {
        let entries: usize = rows.iter().map(Vec::len).sum();
        if u32::try_from(entries).is_err() {
            return Err(R1csError::TooManyEntries(entries));
        }
        let mut m = SparseMatrix::with_capacity(rows.len(), entries);
        for row in rows {
            let mut terms = Vec::with_capacity(row.len());
            for &(coeff, col) in row {
                let col = u32::try_from(col).map_err(|_| R1csError::TooManyEntries(col))?;
                terms.push((coeff, col));
            }
            m.push_row(terms);
        }
        Ok(m)
    }

    /// To arkworks' row-of-pairs form, for cross-checks against ark-groth16.
    pub fn to_ark(&self) -> Vec<Vec<(Fr, usize)>> {
        (0..self.num_rows())
            .map(|i| self.row(i).map(|(c, v)| (c, v as usize)).collect())
            .collect()
    }

    pub fn num_rows(&self) -> usize {
        self.row_offsets.len() - 1
    }

    pub fn num_entries(&self) -> usize {
        self.cols.len()
    }

    pub fn row_offsets(&self) -> &[u32] {
        &self.row_offsets
    }

    pub fn cols(&self) -> &[u32] {
        &self.cols
    }

    pub fn coeffs(&self) -> &[Fr] {
        &self.coeffs
    }

    /// The `(coefficient, variable)` terms of row `i`.
    pub fn row(&self, i: usize) -> impl Iterator<Item = (Fr, u32)> + '_ {
        let (start, end) = (
            self.row_offsets[i] as usize,
            self.row_offsets[i + 1] as usize,
        );
        self.coeffs[start..end]
            .iter()
            .copied()
            .zip(self.cols[start..end].iter().copied())
    }

    /// The largest variable index used, if any entry exists.
    pub fn max_col(&self) -> Option<u32> {
        self.cols.par_iter().copied().max()
    }

    /// `out[i] = ⟨row i, w⟩` for every row, in parallel. `out` may be longer than the row
    /// count; the rest is left untouched. Panics if a column is out of range of `w` (callers
    /// validate matrices against the variable count first).
    pub fn mul_vector_into(&self, w: &[Fr], out: &mut [Fr]) {
        assert!(
            out.len() >= self.num_rows(),
            "output shorter than the row count"
        );
        out[..self.num_rows()]
            .par_iter_mut()
            .enumerate()
            .with_min_len(256)
            .for_each(|(i, o)| {
                *o = self.row(i).fold(Fr::zero(), |acc, (c, v)| {
                    let x = w[v as usize];
                    if c == Fr::ONE {
                        acc + x
                    } else {
                        acc + c * x
                    }
                });
            });
    }

    /// Every column is below `num_variables`.
    pub(crate) fn check_cols(&self, num_variables: usize) -> Result<(), R1csError> {
        match self.max_col() {
            Some(col) if col as usize >= num_variables => {
                let pos = self.cols.iter().position(|&c| c == col).unwrap_or(0);
                let row = self.row_offsets.partition_point(|&o| o as usize <= pos) - 1;
                Err(R1csError::ColumnOutOfRange {
                    row,
                    col,
                    num_variables,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Domain size for `num_constraints` constraints and `num_public` public inputs: the smallest
/// power of two holding the constraints plus the `num_public + 1` input rows.
pub fn domain_size_for(num_constraints: usize, num_public: usize) -> Result<usize, R1csError> {
    let rows = num_constraints.saturating_add(num_public).saturating_add(1);
    let too_large = |log2| R1csError::DomainTooLarge {
        num_constraints,
        num_public,
        log2,
    };
    let size = rows
        .checked_next_power_of_two()
        .ok_or(too_large(usize::BITS))?;
    let log2 = size.trailing_zeros();
    if log2 > MAX_DOMAIN_LOG2 {
        return Err(too_large(log2));
    }
    // NTTs need at least two points; a circuit with no constraints still gets a 2-domain.
    Ok(size.max(2))
}

/// A constraint system: the three matrices and the variable layout. All fields are checked
/// against each other by [`R1cs::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct R1cs {
    num_public: usize,
    num_variables: usize,
    a: SparseMatrix,
    b: SparseMatrix,
    c: SparseMatrix,
}

impl R1cs {
    pub fn new(
        num_public: usize,
        num_variables: usize,
        a: SparseMatrix,
        b: SparseMatrix,
        c: SparseMatrix,
    ) -> Result<Self, R1csError> {
        if num_variables < num_public + 1 {
            return Err(R1csError::TooFewVariables {
                num_public,
                num_variables,
            });
        }
        if a.num_rows() != b.num_rows() || a.num_rows() != c.num_rows() {
            return Err(R1csError::RowCountMismatch {
                a: a.num_rows(),
                b: b.num_rows(),
                c: c.num_rows(),
            });
        }
        for m in [&a, &b, &c] {
            m.check_cols(num_variables)?;
        }
        domain_size_for(a.num_rows(), num_public)?;
        Ok(R1cs {
            num_public,
            num_variables,
            a,
            b,
            c,
        })
    }

    /// From an arkworks constraint system after `finalize()`: instance variables (including
    /// the constant) first, then witnesses, as ark numbers them.
    pub fn from_constraint_system(
        cs: &ark_relations::gr1cs::ConstraintSystemRef<Fr>,
    ) -> Result<Self, R1csFromArkError> {
        let matrices = cs.to_matrices()?;
        let m = matrices
            .get(ark_relations::gr1cs::R1CS_PREDICATE_LABEL)
            .ok_or(R1csFromArkError::NoR1csPredicate)?;
        if m.len() != 3 {
            return Err(R1csFromArkError::NoR1csPredicate);
        }
        let num_public = cs.num_instance_variables() - 1;
        let r1cs = R1cs::new(
            num_public,
            cs.num_instance_variables() + cs.num_witness_variables(),
            SparseMatrix::from_ark(&m[0])?,
            SparseMatrix::from_ark(&m[1])?,
            SparseMatrix::from_ark(&m[2])?,
        )?;
        Ok(r1cs)
    }

    pub fn num_public(&self) -> usize {
        self.num_public
    }
    pub fn num_variables(&self) -> usize {
        self.num_variables
    }
    pub fn num_constraints(&self) -> usize {
        self.a.num_rows()
    }
    pub fn a(&self) -> &SparseMatrix {
        &self.a
    }
    pub fn b(&self) -> &SparseMatrix {
        &self.b
    }
    pub fn c(&self) -> &SparseMatrix {
        &self.c
    }

    /// The evaluation domain size n (checked in `new`).
    pub fn domain_size(&self) -> usize {
        domain_size_for(self.num_constraints(), self.num_public)
            .expect("R1cs::new checked the domain size")
    }

    /// The first unsatisfied constraint for witness `w`, if any (`None` = satisfied).
    /// Panics if `w` has the wrong length.
    pub fn first_unsatisfied(&self, w: &[Fr]) -> Option<usize> {
        assert_eq!(w.len(), self.num_variables, "witness length");
        let m = self.num_constraints();
        let (mut a, mut b, mut c) = (
            vec![Fr::zero(); m],
            vec![Fr::zero(); m],
            vec![Fr::zero(); m],
        );
        self.a.mul_vector_into(w, &mut a);
        self.b.mul_vector_into(w, &mut b);
        self.c.mul_vector_into(w, &mut c);
        (0..m).into_par_iter().find_first(|&i| a[i] * b[i] != c[i])
    }
}

/// Converting an arkworks constraint system failed.
#[derive(Debug, thiserror::Error)]
pub enum R1csFromArkError {
    #[error("arkworks synthesis error: {0}")]
    Synthesis(#[from] ark_relations::gr1cs::SynthesisError),
    #[error("the constraint system has no R1CS predicate (matrices A, B, C)")]
    NoR1csPredicate,
    #[error(transparent)]
    Shape(#[from] R1csError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: &[&[(u64, u32)]]) -> SparseMatrix {
        let mut s = SparseMatrix::new();
        for r in rows {
            s.push_row(r.iter().map(|&(c, v)| (Fr::from(c), v)));
        }
        s
    }

    #[test]
    fn domain_size_counts_public_rows_and_caps() {
        assert_eq!(domain_size_for(0, 0).unwrap(), 2);
        assert_eq!(domain_size_for(12, 3).unwrap(), 16);
        assert_eq!(domain_size_for(13, 3).unwrap(), 32);
        assert_eq!(domain_size_for((1 << 26) - 1, 0).unwrap(), 1 << 26);
        assert!(matches!(
            domain_size_for(1 << 26, 0),
            Err(R1csError::DomainTooLarge { log2: 27, .. })
        ));
        assert!(domain_size_for(usize::MAX, 0).is_err());
    }

    #[test]
    fn matrix_rows_drop_zeros_and_multiply() {
        let a = m(&[&[(2, 1), (0, 2)], &[], &[(1, 0), (3, 2)]]);
        assert_eq!(a.num_rows(), 3);
        assert_eq!(a.num_entries(), 3);
        let w = [Fr::from(1u64), Fr::from(5u64), Fr::from(7u64)];
        let mut out = vec![Fr::from(99u64); 4];
        a.mul_vector_into(&w, &mut out);
        assert_eq!(
            out,
            vec![
                Fr::from(10u64),
                Fr::zero(),
                Fr::from(22u64),
                Fr::from(99u64)
            ]
        );
        assert_eq!(SparseMatrix::from_ark(&a.to_ark()).unwrap(), a);
    }

    #[test]
    fn from_parts_rejects_inconsistent_offsets() {
        let ok = SparseMatrix::from_parts(vec![0, 1, 1], vec![0], vec![Fr::ONE]);
        assert!(ok.is_ok());
        for (offs, cols) in [
            (vec![1, 1], vec![0]),
            (vec![0, 2, 1], vec![0]),
            (vec![0, 0], vec![0]),
            (vec![], vec![]),
        ] {
            let coeffs = vec![Fr::ONE; cols.len()];
            assert!(SparseMatrix::from_parts(offs, cols, coeffs).is_err());
        }
    }

    #[test]
    fn r1cs_checks_columns_rows_and_reports_unsatisfied() {
        // w = (1, x, y): x * x = y
        let a = m(&[&[(1, 1)]]);
        let c = m(&[&[(1, 2)]]);
        let r = R1cs::new(1, 3, a.clone(), a.clone(), c.clone()).unwrap();
        assert_eq!(r.domain_size(), 4);
        let good = [Fr::ONE, Fr::from(3u64), Fr::from(9u64)];
        let bad = [Fr::ONE, Fr::from(3u64), Fr::from(8u64)];
        assert_eq!(r.first_unsatisfied(&good), None);
        assert_eq!(r.first_unsatisfied(&bad), Some(0));
        assert_eq!(
            R1cs::new(1, 2, a.clone(), a.clone(), c.clone()),
            Err(R1csError::ColumnOutOfRange {
                row: 0,
                col: 2,
                num_variables: 2
            })
        );
        assert!(matches!(
            R1cs::new(1, 3, a.clone(), SparseMatrix::new(), c),
            Err(R1csError::RowCountMismatch { .. })
        ));
        assert!(matches!(
            R1cs::new(3, 3, a.clone(), a.clone(), a),
            Err(R1csError::TooFewVariables { .. })
        ));
    }
}
