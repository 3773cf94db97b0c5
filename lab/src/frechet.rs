//! The Frechet distance between two Gaussians fitted to feature sets (Heusel et al. 2017, Eq. 6):
//! `d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`.
//!
//! `Tr((S1 S2)^(1/2))` is computed as `Tr((A S2 A)^(1/2))` with `A = S1^(1/2)`: the two matrices
//! are similar, and the second is symmetric, so both square roots come from symmetric
//! eigendecompositions (cyclic Jacobi).

/// Mean and covariance (divided by n - 1) of `n` rows of `d` features.
pub fn fit(rows: &[f32], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() / d;
    let mut mu = vec![0.0; d];
    for r in rows.chunks_exact(d) {
        for (m, &v) in mu.iter_mut().zip(r) {
            *m += v as f64 / n as f64;
        }
    }
    let mut cov = vec![0.0; d * d];
    for r in rows.chunks_exact(d) {
        for i in 0..d {
            let a = r[i] as f64 - mu[i];
            for j in 0..d {
                cov[i * d + j] += a * (r[j] as f64 - mu[j]) / (n as f64 - 1.0);
            }
        }
    }
    (mu, cov)
}

/// Eigenvalues and eigenvectors (columns of the returned row-major matrix) of a symmetric matrix.
fn jacobi(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j].powi(2))
            .sum();
        let total: f64 = a.iter().map(|x| x * x).sum();
        if off <= 1e-24 * total.max(1e-300) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                // Rotation that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.4.1).
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum().max(0.0) * 2.0 - 1.0;
                let t = t / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

/// The symmetric square root `V diag(sqrt(max(l, 0))) V^T` of a symmetric PSD matrix.
fn sqrtm(a: &[f64], d: usize) -> Vec<f64> {
    let (l, v) = jacobi(a.to_vec(), d);
    let mut out = vec![0.0; d * d];
    for k in 0..d {
        let s = l[k].max(0.0).sqrt();
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] += v[i * d + k] * s * v[j * d + k];
            }
        }
    }
    out
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            for j in 0..d {
                out[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    out
}

/// The Frechet distance d^2 between N(mu1, s1) and N(mu2, s2).
pub fn distance(mu1: &[f64], s1: &[f64], mu2: &[f64], s2: &[f64]) -> f64 {
    let d = mu1.len();
    let a = sqrtm(s1, d);
    let m = matmul(&matmul(&a, s2, d), &a, d);
    let (l, _) = jacobi(m, d);
    let tr_sqrt: f64 = l.iter().map(|x| x.max(0.0).sqrt()).sum();
    let mean: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b).powi(2)).sum();
    let tr: f64 = (0..d).map(|i| s1[i * d + i] + s2[i * d + i]).sum();
    (mean + tr - 2.0 * tr_sqrt).max(0.0)
}

/// Frechet distance between two feature sets of `d` columns.
pub fn between(a: &[f32], b: &[f32], d: usize) -> f64 {
    let (m1, s1) = fit(a, d);
    let (m2, s2) = fit(b, d);
    distance(&m1, &s1, &m2, &s2)
}

/// FD against `reference` of `draws` subsets of `n` rows of `pool`, each drawn at random without
/// replacement (seeded): what a sampler that draws real digits at random would score at N = n.
/// An unconditional model is such a sampler at its best, and its class mix varies from draw to
/// draw as theirs does (docs/EVAL.md). One distance per draw, in draw order.
pub fn random_subsets(
    pool: &[f32],
    reference: &[f32],
    d: usize,
    n: usize,
    draws: usize,
    seed: u64,
) -> Vec<f64> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let rows = pool.len() / d;
    assert!(n <= rows, "{n} rows drawn from a pool of {rows}");
    let (m2, s2) = fit(reference, d);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..rows).collect();
    (0..draws)
        .map(|_| {
            order.shuffle(&mut rng);
            subset_distance(pool, d, &order[..n], (&m2, &s2))
        })
        .collect()
}

/// The Frechet distance of rows `rows` of `pool` (`d` features each) to a fitted reference.
fn subset_distance(pool: &[f32], d: usize, rows: &[usize], (m2, s2): (&[f64], &[f64])) -> f64 {
    let subset: Vec<f32> = rows
        .iter()
        .flat_map(|&i| pool[i * d..(i + 1) * d].iter().copied())
        .collect();
    let (m1, s1) = fit(&subset, d);
    distance(&m1, &s1, m2, s2)
}

/// Frechet distances of `draws` sets of `n_per_class` rows of each class (`labels`, one per row
/// of `pool`), drawn at random without replacement within each class, against `reference`: how
/// far FD moves from one draw of real digits to another at the N a setting samples, the size of
/// a setting's own run-to-run spread where its samples were as varied as real digits.
pub fn stratified_subsets(
    pool: &[f32],
    labels: &[u8],
    reference: &[f32],
    d: usize,
    n_per_class: usize,
    draws: usize,
    seed: u64,
) -> Vec<f64> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    assert_eq!(pool.len() / d, labels.len(), "one label per row");
    let (m2, s2) = fit(reference, d);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = (0..classes)
        .map(|c| {
            (0..labels.len())
                .filter(|&i| labels[i] as usize == c)
                .collect()
        })
        .collect();
    (0..draws)
        .map(|_| {
            let drawn: Vec<usize> = by_class
                .iter_mut()
                .flat_map(|rows| {
                    assert!(
                        n_per_class <= rows.len(),
                        "{n_per_class} drawn from {}",
                        rows.len()
                    );
                    rows.shuffle(&mut rng);
                    rows[..n_per_class].to_vec()
                })
                .collect();
            subset_distance(pool, d, &drawn, (&m2, &s2))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_gaussians_have_the_closed_form() {
        // For commuting (here diagonal) covariances: d^2 = |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
        let (mu1, mu2) = (vec![0.0, 1.0, 2.0], vec![1.0, 1.0, 0.0]);
        let s1 = vec![4.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 9.0];
        let s2 = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 4.0];
        let expected = 1.0 + 4.0 + (2.0f64 - 1.0).powi(2) + 0.0 + (3.0f64 - 2.0).powi(2);
        assert!((distance(&mu1, &s1, &mu2, &s2) - expected).abs() < 1e-9);
    }

    #[test]
    fn a_rotated_covariance_and_itself_are_at_distance_zero() {
        // A full (non-diagonal) covariance against itself.
        let s = vec![2.0, 0.6, 0.1, 0.6, 1.0, -0.3, 0.1, -0.3, 0.5];
        let mu = vec![0.3, -0.2, 0.0];
        assert!(distance(&mu, &s, &mu, &s).abs() < 1e-9);
        // and against a scaled copy: Tr(S + 4S - 2 * 2S) = Tr(S) = 3.5
        let s4: Vec<f64> = s.iter().map(|x| 4.0 * x).collect();
        assert!((distance(&mu, &s, &mu, &s4) - 3.5).abs() < 1e-9);
    }

    /// Covariances that do not commute, against the 2 x 2 closed form: for a 2 x 2 positive
    /// semi-definite M, Tr M^(1/2) = sqrt(Tr M + 2 sqrt(det M)), and with M = S1^(1/2) S2
    /// S1^(1/2), Tr M = Tr(S1 S2) and det M = det S1 det S2. Taking Tr(S1^(1/2) S2^(1/2)) for
    /// the cross term, as holds only when they commute, gives 0.692 here, not 0.670.
    #[test]
    fn non_commuting_covariances_have_the_closed_form() {
        let s1 = vec![1.0, 0.0, 0.0, 4.0];
        let s2 = vec![2.0, 1.0, 1.0, 3.0];
        let (mu1, mu2) = (vec![0.5, 0.0], vec![0.0, 0.0]);
        let tr_s1s2 = 1.0 * 2.0 + 4.0 * 3.0;
        let det = (1.0 * 4.0) * (2.0 * 3.0 - 1.0 * 1.0);
        let cross = (tr_s1s2 + 2.0 * f64::sqrt(det)).sqrt();
        let expected = 0.25 + (1.0 + 4.0) + (2.0 + 3.0) - 2.0 * cross;
        let got = distance(&mu1, &s1, &mu2, &s2);
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        assert!((expected - 0.66996).abs() < 1e-5, "{expected}");
    }

    #[test]
    fn random_subsets_score_the_classes_they_happen_to_draw() {
        // Two "classes" of one feature, at 0 and 10; the reference holds both twice: mean 5,
        // variance 100 / 3. In 1-D, d^2 = (mu1 - mu2)^2 + (sd1 - sd2)^2.
        let pool = [0.0, 0.0, 10.0, 10.0];
        let reference = [0.0, 10.0, 0.0, 10.0];
        let sd_ref = (100.0f64 / 3.0).sqrt();
        // Two rows of one class: mean 0 or 10, variance 0.
        let one_class = 25.0 + sd_ref * sd_ref;
        // One row of each: mean 5, variance 50.
        let both = (50.0f64.sqrt() - sd_ref).powi(2);
        let draws = random_subsets(&pool, &reference, 1, 2, 20, 3);
        assert_eq!(draws.len(), 20);
        assert!(draws
            .iter()
            .all(|x| (x - one_class).abs() < 1e-9 || (x - both).abs() < 1e-9));
        // Both kinds of draw happen (fixed seed), and the same seed draws the same subsets.
        assert!(draws.iter().any(|x| (x - one_class).abs() < 1e-9));
        assert!(draws.iter().any(|x| (x - both).abs() < 1e-9));
        assert_eq!(draws, random_subsets(&pool, &reference, 1, 2, 20, 3));
        // The whole pool is the reference's digits: distance 0 every time.
        for x in random_subsets(&pool, &reference, 1, 4, 3, 3) {
            assert!(x.abs() < 1e-9, "{x}");
        }
    }
}
