// Pushes one file as a blob with the registry client and pulls it back, streaming both
// ways. Run by Benchmarks/blob-roundtrip, which measures its time and peak memory.
//
//   BlobRoundTrip <host:port> <repository> <file> <download-to> [push|pull|both]
import Foundation
import OCI
import Registry

let arguments = CommandLine.arguments
guard arguments.count >= 5 else {
    FileHandle.standardError.write(
        Data("usage: BlobRoundTrip <host:port> <repository> <file> <download-to> [push|pull|both]\n".utf8))
    exit(2)
}
do {
    let client = try RegistryClient(host: RegistryHost(arguments[1]), credentialLookup: nil, insecure: true)
    let repository = try Repository(arguments[2])
    let file = URL(fileURLWithPath: arguments[3])
    let mode = arguments.count > 5 ? arguments[5] : "both"

    // Hash the file streaming, as a pusher must before it can name the blob.
    let handle = try FileHandle(forReadingFrom: file)
    var hasher = DigestHasher()
    var size: Int64 = 0
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
        hasher.update(chunk)
        size += Int64(chunk.count)
    }
    try handle.close()
    let descriptor = Descriptor(mediaType: .ociLayer, digest: hasher.finalize(), size: size)

    if mode != "pull" {
        let started = Date()
        let outcome = try client.uploadBlob(repository, descriptor, from: file)
        print("push \(outcome) \(String(format: "%.3f", Date().timeIntervalSince(started))) s")
    }
    if mode != "push" {
        let started = Date()
        try client.downloadBlob(repository, descriptor, to: URL(fileURLWithPath: arguments[4]))
        print("pull \(String(format: "%.3f", Date().timeIntervalSince(started))) s")
    }
    print(descriptor.digest)
} catch {
    FileHandle.standardError.write(Data("BlobRoundTrip: \(error)\n".utf8))
    exit(1)
}
