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

/// `count` texts made from `seeds` by up to `edits` random edits each (a character removed,
/// replaced or inserted, drawn from `noise`): a fuzzer's input that is the same on every run.
pub fn mutations(seeds: &[String], count: usize, edits: usize, noise: &str) -> Vec<String> {
    let noise: Vec<char> = noise.chars().collect();
    let mut random = XorShift::default();
    (0..count)
        .map(|_| {
            let mut input: Vec<char> = random.pick(seeds).chars().collect();
            for _ in 0..=random.below(edits) {
                let at = random.below(input.len() + 1);
                match random.below(3) {
                    0 if at < input.len() => {
                        input.remove(at);
                    }
                    1 if at < input.len() => input[at] = *random.pick(&noise),
                    _ => input.insert(at, *random.pick(&noise)),
                }
            }
            input.into_iter().collect()
        })
        .collect()
}

/// The characters JSON is made of, for [`mutations`] of JSON text.
pub const JSON_NOISE: &str = "{}[]\":,-0123456789.eabcdefnulltrue _";
