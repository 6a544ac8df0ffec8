// Applies one layer blob (gzip, zstd or plain tar) to a root directory with Slipway's
// unpacker, for Benchmarks/rootfs-unpack. Prints one summary line; errors go to stderr.
//
// Usage: RootFSUnpack LAYER ROOT [DIFF_ID]
import Archive
import Console
import Foundation
import OCI
import RootFS

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: RootFSUnpack LAYER ROOT [DIFF_ID]\n".utf8))
    exit(2)
}
do {
    let expected = arguments.count == 4 ? try Digest(arguments[3]) : nil
    let unpacker = Unpacker(root: URL(fileURLWithPath: arguments[2]), options: .init(log: .standardError()))
    let report = try unpacker.apply(layer: try FileSource(path: arguments[1]), expectedDiffID: expected)
    print(
        "\(report.entries) entries, \(report.uncompressedSize) bytes uncompressed (\(report.compression)), diff ID \(report.diffID)"
    )
} catch {
    FileHandle.standardError.write(Data("RootFSUnpack: \(error)\n".utf8))
    exit(1)
}
