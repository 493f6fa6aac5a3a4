//! Test helpers.

/// A deterministic xorshift generator: property sweeps that are the same on every run, so a
/// failure reproduces.
pub struct XorShift(u64);

impl Default for XorShift {
    fn default() -> Self {
        XorShift(0x9E37_79B9_7F4A_7C15)
    }
}

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
