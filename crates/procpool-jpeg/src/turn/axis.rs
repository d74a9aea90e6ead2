//! One axis of a component turned: for each block of the output grid, the
//! input blocks it comes from and the linear maps that make it.

use super::block::{BASIS, Matrix};

/// Where one turned block comes from along one axis.
#[derive(Clone, Copy, Default)]
pub(super) struct Step {
    /// The input blocks along the axis (one or two), and the matrix (in
    /// [`Axis::matrices`]) that takes each to this block.
    pub(super) from: [u32; 2],
    pub(super) matrix: [u32; 2],
    pub(super) count: u8,
    /// Whether the block lies wholly past the samples (padding to whole
    /// MCUs): its DC coefficient is enough.
    pub(super) padding: bool,
}

/// Where the eight samples of a turned block come from: each one's input
/// block (counted back from the first one's) and its row or column there.
pub(super) type Shape = [(u32, u8); 8];

/// One axis of a component turned: for each block of the output grid,
/// where it comes from.
pub(super) struct Axis {
    /// Whether the samples fill whole blocks: each turned block is one
    /// input block with the signs of its odd frequencies flipped.
    pub(super) exact: bool,
    pub(super) steps: Vec<Step>,
    pub(super) matrices: Vec<Matrix>,
}

impl Axis {
    /// The axis of a component `n` samples long turned onto `grid` blocks
    /// (past the samples, the edge repeats).
    pub(super) fn new(n: usize, grid: usize) -> Axis {
        let blocks = n.div_ceil(8);
        let sign = std::array::from_fn(|w| {
            std::array::from_fn(|v| match (v == w, w % 2) {
                (false, _) => 0.0,
                (true, 0) => 1.0,
                (true, _) => -1.0,
            })
        });
        let mut axis = Axis {
            exact: n.is_multiple_of(8),
            steps: Vec::with_capacity(grid),
            matrices: vec![sign],
        };
        // The blocks whose samples come from the same places relative to
        // their first source share their matrices.
        let mut seen: Vec<(Shape, [u32; 2])> = Vec::new();
        for b in 0..grid {
            let padding = 8 * b >= n;
            if axis.exact {
                let from = (blocks - 1 - b.min(blocks - 1)) as u32;
                axis.steps.push(Step {
                    from: [from, 0],
                    matrix: [0, 0],
                    count: 1,
                    padding,
                });
                continue;
            }
            // Output sample 8b + r is input sample n - 1 - (8b + r), the
            // edge repeated past the end: block i / 8, its row i % 8.
            let sources: [(usize, usize); 8] = std::array::from_fn(|r| {
                let i = n - 1 - (8 * b + r).min(n - 1);
                (i / 8, i % 8)
            });
            let first = sources[0].0;
            let shape = sources.map(|(s, l)| ((first - s) as u32, l as u8));
            let mut step = Step {
                from: [first as u32, first.saturating_sub(1) as u32],
                padding,
                count: if sources[7].0 == first { 1 } else { 2 },
                ..Step::default()
            };
            if let Some((_, matrix)) = seen.iter().find(|(s, _)| *s == shape) {
                step.matrix = *matrix;
            } else {
                for j in 0..usize::from(step.count) {
                    let mut m = [[0f64; 8]; 8];
                    for (r, &(s, l)) in sources.iter().enumerate() {
                        if s != first - j {
                            continue;
                        }
                        for (w, row) in m.iter_mut().enumerate() {
                            for (v, value) in row.iter_mut().enumerate() {
                                *value += BASIS[l][w] * BASIS[r][v];
                            }
                        }
                    }
                    step.matrix[j] = axis.matrices.len() as u32;
                    axis.matrices.push(m.map(|row| row.map(|v| v as f32)));
                }
                seen.push((shape, step.matrix));
            }
            axis.steps.push(step);
        }
        axis
    }
}

#[cfg(test)]
mod tests {
    use super::super::block::BASIS;
    use super::*;

    #[test]
    fn an_axis_maps_blocks_to_the_turned_samples_blocks() {
        // One axis of 20 samples (2.5 blocks) onto 4 blocks, then 16
        // samples (whole blocks) onto 3: the DCT of each turned block of
        // samples, the edge repeated past the end, from the input blocks'.
        let dct = |x: &[f64]| -> [f64; 8] {
            std::array::from_fn(|v| (0..8).map(|r| BASIS[r][v] * x[r]).sum())
        };
        for (n, grid) in [(20usize, 4usize), (16, 3), (3, 1)] {
            let x: Vec<f64> = (0..8 * n.div_ceil(8))
                .map(|i| if i < n { ((i * 37) % 23) as f64 } else { 0.0 })
                .collect();
            let input: Vec<[f64; 8]> = x.chunks(8).map(dct).collect();
            let axis = Axis::new(n, grid);
            assert_eq!(axis.exact, n % 8 == 0);
            for (b, step) in axis.steps.iter().enumerate() {
                let turned: Vec<f64> = (0..8).map(|r| x[n - 1 - (8 * b + r).min(n - 1)]).collect();
                let expected = dct(&turned);
                let mut got = [0f64; 8];
                for j in 0..usize::from(step.count) {
                    let m = &axis.matrices[step.matrix[j] as usize];
                    for (w, c) in input[step.from[j] as usize].iter().enumerate() {
                        for (v, g) in got.iter_mut().enumerate() {
                            *g += f64::from(m[w][v]) * c;
                        }
                    }
                }
                assert_eq!(step.padding, 8 * b >= n, "n {n} block {b}");
                if axis.exact && step.padding {
                    continue; // the DC coefficient of the edge block, by design
                }
                for (g, e) in got.iter().zip(&expected) {
                    assert!(
                        (g - e).abs() < 1e-3,
                        "n {n} block {b}: {got:?} {expected:?}"
                    );
                }
            }
        }
    }
}
