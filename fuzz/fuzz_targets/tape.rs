//! Shared by the session fuzz targets: a source of driver decisions drawn from the fuzz input.

/// Draws bytes from the input to decide the driver's answers; repeats when it runs out.
pub struct Tape<'a> {
    pub data: &'a [u8],
    pub position: usize,
}

impl Tape<'_> {
    pub fn byte(&mut self) -> u8 {
        if self.data.is_empty() {
            return 0;
        }
        let byte = self.data[self.position % self.data.len()];
        self.position = self.position.wrapping_add(1);
        byte
    }
}
