//! gRPC message framing: a compressed flag byte, a 4-byte big-endian length, the message.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Length of the frame header: flag byte plus length.
const HEADER_BYTES: usize = 5;

/// Why a frame cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// The transcoder never asks for compression, so a compressed frame is a protocol error.
    #[error(
        "the grpc response is compressed; the REST transcoder reads only uncompressed messages"
    )]
    Compressed,
    /// The message does not fit the 4-byte length.
    #[error("a message of {0} bytes is too large for one grpc frame")]
    TooLarge(usize),
    /// The stream ended inside a frame.
    #[error("the grpc response ended inside a message")]
    Truncated,
}

/// Frames one uncompressed message.
pub(crate) fn encode_frame(message: &[u8]) -> Result<Bytes, FrameError> {
    let length = u32::try_from(message.len()).map_err(|_| FrameError::TooLarge(message.len()))?;
    let mut frame = BytesMut::with_capacity(HEADER_BYTES + message.len());
    frame.put_u8(0);
    frame.put_u32(length);
    frame.put_slice(message);
    Ok(frame.freeze())
}

/// Reassembles messages from body chunks that may split or join frames anywhere.
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    buffer: BytesMut,
}

impl FrameDecoder {
    /// Appends a chunk of the response body.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete message, if the buffer holds one.
    pub(crate) fn next_message(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.buffer.len() < HEADER_BYTES {
            return Ok(None);
        }
        let compressed = self.buffer[0];
        let length_bytes = [
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ];
        let length = usize::try_from(u32::from_be_bytes(length_bytes))
            .map_err(|_| FrameError::TooLarge(usize::MAX))?;
        if compressed != 0 {
            return Err(FrameError::Compressed);
        }
        if self.buffer.len() < HEADER_BYTES + length {
            return Ok(None);
        }
        self.buffer.advance(HEADER_BYTES);
        Ok(Some(self.buffer.split_to(length).freeze()))
    }

    /// Checks that no partial frame is left once the body has ended.
    pub(crate) fn finish(&self) -> Result<(), FrameError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        Err(FrameError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_message() {
        let frame = encode_frame(b"abc").expect("small message");
        assert_eq!(frame.as_ref(), b"\x00\x00\x00\x00\x03abc");
    }

    #[test]
    fn reassembles_messages_split_and_joined_across_chunks() {
        let mut stream = Vec::new();
        for message in [b"first".as_slice(), b"", b"third message"] {
            stream.extend_from_slice(&encode_frame(message).expect("small message"));
        }
        for chunk_size in 1..=stream.len() {
            let mut decoder = FrameDecoder::default();
            let mut messages = Vec::new();
            for chunk in stream.chunks(chunk_size) {
                decoder.push(chunk);
                while let Some(message) = decoder.next_message().expect("valid frames") {
                    messages.push(message);
                }
            }
            assert_eq!(
                messages,
                [&b"first"[..], b"", b"third message"],
                "chunks of {chunk_size}"
            );
            assert_eq!(decoder.finish(), Ok(()));
        }
    }

    #[test]
    fn reports_truncated_and_compressed_frames() {
        let mut truncated = FrameDecoder::default();
        truncated.push(b"\x00\x00\x00\x00\x05ab");
        assert_eq!(truncated.next_message(), Ok(None));
        assert_eq!(truncated.finish(), Err(FrameError::Truncated));
        let mut compressed = FrameDecoder::default();
        compressed.push(b"\x01\x00\x00\x00\x01a");
        assert_eq!(compressed.next_message(), Err(FrameError::Compressed));
    }
}
