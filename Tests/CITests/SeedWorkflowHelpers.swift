import Foundation
import OCI
import Registry
import TestSupport
import Testing

/// What the seed workflow tests share: image contexts that need no network (busybox-static
/// copied FROM scratch), and registry look-ups.
enum SeedFixture {
    /// Writes an image directory: busybox, a RUN that records `marker`, a file.
    static func imageFiles(_ directory: String, marker: String, from base: String = "scratch") -> [String: String] {
        let copyBusybox = base == "scratch" ? "COPY busybox /bin/busybox\n" : ""
        return [
            "\(directory)/Dockerfile":
                "FROM \(base)\n\(copyBusybox)COPY marker /marker\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"cat /marker >> /built\"]\n",
            "\(directory)/marker": "\(marker)\n",
        ]
    }

    /// Commits `files` plus busybox in each image directory whose Dockerfile copies it in.
    static func commit(_ repository: TestGitRepository, _ message: String, files: [String: String]) throws -> String {
        _ = try repository.commit(message, files: files)
        var added = false
        for (path, content) in files where path.hasSuffix("/Dockerfile") && content.contains("busybox /bin/busybox") {
            let target = repository.path.appendingPathComponent((path as NSString).deletingLastPathComponent)
                .appendingPathComponent("busybox")
            if !FileManager.default.fileExists(atPath: target.path) {
                try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: target.path)
                _ = try repository.git("add", target.path)
                added = true
            }
        }
        if added { _ = try repository.git("commit", "--amend", "--no-edit", "--quiet") }
        return try repository.head()
    }

    static func digest(_ registry: TestRegistry, _ repository: String, _ tag: String) throws -> String? {
        try registry.client().manifestDescriptor(try Repository(repository), .tag(try OCI.Tag(tag)))?.digest.rawValue
    }

    static func tags(_ registry: TestRegistry, _ repository: String) throws -> Set<String> {
        Set(try registry.client().tags(try Repository(repository)).map(\.rawValue))
    }
}
