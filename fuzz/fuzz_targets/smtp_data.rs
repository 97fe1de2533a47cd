//! Fuzzes the DATA/BDAT content decoder with arbitrary bytes and chunkings.
//!
//! Checks, besides "never panics": the decoder never keeps more than its size limit; consumed
//! counts stay within each input; decoding in chunks gives exactly what decoding at once gives.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_smtp::proto::BareLineEnding;
use tidings_smtp::proto::data::DataDecoder;

fn decoder(flags: u8, message_bytes_max: usize) -> DataDecoder {
    let policy = if flags & 1 != 0 { BareLineEnding::Normalize } else { BareLineEnding::Reject };
    let text_line_bytes_max = if flags & 4 != 0 { 16 } else { 1000 };
    if flags & 2 != 0 {
        DataDecoder::new_chunked(message_bytes_max, text_line_bytes_max, policy)
    } else {
        DataDecoder::new(message_bytes_max, text_line_bytes_max, policy)
    }
}

fuzz_target!(|input: &[u8]| {
    let [flags, size, chunk, content @ ..] = input else {
        return;
    };
    let message_bytes_max = usize::from(*size) * 4;
    let mut whole = decoder(*flags, message_bytes_max);
    let (whole_consumed, whole_ended) = whole.decode(content);
    assert!(whole_consumed <= content.len());
    assert!(whole.retained_bytes() <= message_bytes_max);

    let mut pieces = decoder(*flags, message_bytes_max);
    let mut consumed = 0;
    let mut ended = false;
    for piece in content.chunks(usize::from(*chunk).max(1)) {
        let (count, end) = pieces.decode(piece);
        assert!(count <= piece.len());
        assert!(pieces.retained_bytes() <= message_bytes_max);
        consumed += count;
        if end {
            ended = true;
            break;
        }
        assert_eq!(count, piece.len(), "input is consumed in full until the end");
    }
    assert_eq!((consumed, ended), (whole_consumed, whole_ended));
    assert_eq!(pieces.size(), whole.size());
    let result = pieces.finish();
    if let Ok(message) = &result {
        assert!(message.len() <= message_bytes_max);
    }
    assert_eq!(result, whole.finish());
});
