//! The evaluation's fidelity metrics on inputs small enough to check by hand.
#![cfg(not(target_family = "wasm"))]

use guided_ddpm::data::Digits;
use guided_ddpm_lab::fidelity::{balanced_ink, ink, precision_recall, Ink};

#[test]
fn precision_and_recall_on_a_line() {
    // Real points 0, 1, 2, 3: with k = 1 each ball has radius 1. The fake point 0.5 is inside
    // the ball of 0, the fake point 10 is inside none: precision 1/2. The fakes are 9.5 apart, so
    // each fake ball has radius 9.5 and covers every real point: recall 1.
    let real = [0.0, 1.0, 2.0, 3.0];
    let fake = [0.5, 10.0];
    assert_eq!(precision_recall(&real, &fake, 1, 1), (0.5, 1.0));
    // k = 2: real radii grow to 2 (0's second neighbour is 2); 10 is still outside.
    assert_eq!(precision_recall(&real, &fake, 1, 2).0, 0.5);
    // A set against itself is fully covered both ways.
    assert_eq!(precision_recall(&real, &real, 1, 1), (1.0, 1.0));
}

#[test]
fn precision_and_recall_use_every_feature() {
    // Two features: the fake point (0, 5) is near the real points in the first feature only.
    let real = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    let fake = [0.0, 5.0, 0.5, 0.5];
    let (p, r) = precision_recall(&real, &fake, 2, 1);
    assert_eq!(p, 0.5);
    // Fake radius: the distance between the two fakes, sqrt(0.25 + 20.25) ~ 4.5: covers all real.
    assert_eq!(r, 1.0);
}

#[test]
fn ink_is_mean_darkness_and_stroke_share() {
    assert_eq!(
        ink(&[-1.0, 1.0, 0.0, 0.5]),
        Ink {
            mean: 0.5625,
            stroke: 0.5
        }
    );
    assert_eq!(
        ink(&[-1.0; 784]),
        Ink {
            mean: 0.0,
            stroke: 0.0
        }
    );
}

/// Each class counts once, however many digits it has: three blank 0s and one all-stroke 1
/// average to half ink (pooled, they would give a quarter).
#[test]
fn balanced_ink_weights_each_class_equally() {
    let mut pixels = vec![0u8; 3 * 784];
    pixels.extend([255u8; 784]);
    let digits = Digits {
        labels: vec![0, 0, 0, 1],
        pixels,
    };
    assert_eq!(
        balanced_ink(&digits),
        Ink {
            mean: 0.5,
            stroke: 0.5
        }
    );
    assert_eq!(balanced_ink(&Digits::default()), Ink::default());
}
