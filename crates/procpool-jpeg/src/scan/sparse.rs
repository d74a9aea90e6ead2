//! What the walk keeps of a sequential scan for the turn: each block's
//! non-zero quantised coefficients, and the buffers they live in, kept from
//! one image to the next.

/// Buffers kept for the next image of a worker's thread: a flip allocates
/// the same large buffers image after image, and fresh ones cost a page
/// fault per 4 KiB (a tenth of the DCT-domain turn's time).
pub(crate) mod spare {
    use std::cell::RefCell;

    use super::{Block, Sparse};

    thread_local! {
        static PLANES: RefCell<Vec<Sparse>> = const { RefCell::new(Vec::new()) };
    }

    /// How many planes are kept.
    const KEPT: usize = 4;

    /// An empty plane of `n` blocks.
    pub fn plane(n: usize) -> Sparse {
        let mut plane = PLANES.with_borrow_mut(Vec::pop).unwrap_or_default();
        plane.blocks.clear();
        plane.blocks.resize(n, Block::default());
        plane.used = 0;
        plane
    }

    /// Keeps a plane for [`plane`].
    pub fn give_plane(plane: Sparse) {
        PLANES.with_borrow_mut(|spare| {
            if spare.len() < KEPT {
                spare.push(plane);
            }
        });
    }
}

/// Where one block's quantised coefficients are in a [`Sparse`] plane.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Block {
    /// Bit `k` set where AC coefficient `k` (zig-zag order, 1 to 63) is not
    /// zero; bit 0 is never set.
    pub mask: u64,
    /// Where its non-zero AC coefficients start in [`Sparse::values`], in
    /// zig-zag order, one per bit of `mask`.
    pub start: u32,
    /// The DC coefficient (not the difference the file codes).
    pub dc: i16,
}

/// One component's quantised coefficients as read: a photo's blocks hold a
/// few non-zero coefficients each, so only those are kept (a tenth of the
/// memory of 64 per block, which the turn would otherwise zero, fill and
/// read back).
#[derive(Debug, Default)]
pub(crate) struct Sparse {
    /// Its blocks row by row over the grid that whole MCUs cover
    /// (`mcus_x * h` blocks across).
    pub blocks: Vec<Block>,
    /// The non-zero AC coefficients of every block, in the order read:
    /// the first `used`, then room.
    pub values: Vec<i16>,
    pub used: usize,
}

impl Sparse {
    /// Block `i`'s non-zero AC coefficients, in zig-zag order.
    #[inline(always)]
    pub fn values(&self, block: &Block) -> &[i16] {
        let start = block.start as usize;
        &self.values[start..start + block.mask.count_ones() as usize]
    }

    /// Room for the values of one more block, at `used`.
    #[inline(always)]
    pub fn room(&mut self) -> &mut [i16; 64] {
        if self.values.len() < self.used + 64 {
            self.grow();
        }
        let room = &mut self.values[self.used..self.used + 64];
        room.try_into().expect("64 values")
    }

    #[inline(never)]
    fn grow(&mut self) {
        let len = (self.values.len() * 2).max(self.used + 64);
        self.values.resize(len, 0);
    }
}

/// The quantised coefficients of a sequential JPEG's scan of all its
/// components, kept while its image data is checked.
#[derive(Default)]
pub(crate) struct Coefficients {
    /// Per frame component.
    pub planes: Vec<Sparse>,
    /// Whether a scan filled `planes`.
    pub complete: bool,
}
