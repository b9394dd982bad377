/// Flat storage for compiled matchers. Compiled globs and host patterns refer into it by offset,
/// so a policy's rules are plain values and evaluation touches no reference-counted object.
struct MatchArena: Sendable {
    var bytes: [UInt8] = [0]   // never empty, so base addresses exist
    var words: [UInt64] = [0]

    /// Appends `other`, returning the offsets its contents moved by.
    mutating func append(_ other: MatchArena) -> (bytes: Int32, words: Int32) {
        let shift = (Int32(bytes.count), Int32(words.count))
        bytes += other.bytes
        words += other.words
        return shift
    }

    mutating func appendBytes<C: Collection<UInt8>>(_ content: C) -> Int32 {
        let start = Int32(bytes.count)
        bytes += content
        return start
    }

    /// Runs `body` with raw views of the storage.
    @inline(__always)
    func withPointers<R>(_ body: (ArenaPointers) -> R) -> R {
        bytes.withUnsafeBufferPointer { bytes in
            words.withUnsafeBufferPointer { words in
                // Both arrays are non-empty by construction.
                body(ArenaPointers(bytes: bytes.baseAddress.unsafelyUnwrapped,
                                   words: words.baseAddress.unsafelyUnwrapped))
            }
        }
    }
}

/// Raw views of a `MatchArena` for the duration of one evaluation.
struct ArenaPointers {
    let bytes: UnsafePointer<UInt8>
    let words: UnsafePointer<UInt64>
}
