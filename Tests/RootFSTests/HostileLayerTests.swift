import Archive
import Foundation
import OCI
import RootFS
import TestSupport
import Testing

/// One trick from the history of container runtimes and unpackers, as layers.
struct HostileCase: Sendable, CustomTestStringConvertible {
    enum Outcome: Sendable {
        /// Refused with this code and a message containing this text.
        case refused(UnpackError.Kind, String)
        /// Applied, with everything kept inside the root; the check looks at the result.
        case contained(@Sendable (_ root: URL, _ sandbox: Sandbox) throws -> Bool)
    }

    var name: String
    /// Where the trick comes from.
    var origin: String
    /// Layers, given the sandbox so they can aim at its absolute paths; or raw tar bytes.
    var layers: @Sendable (Sandbox) -> [Layer]
    var outcome: Outcome

    enum Layer: Sendable {
        case entries([Entry])
        case raw(Data)
    }

    var testDescription: String { name }
}

private func entries(_ list: Entry...) -> HostileCase.Layer { .entries(list) }

private func exists(_ root: URL, _ path: String) -> Bool {
    var info = stat()
    return lstat(root.appendingPathComponent(path).path, &info) == 0
}

private func type(_ root: URL, _ path: String) -> String? {
    try? snapshot(root)[path]?.type
}

private func contents(_ root: URL, _ path: String) -> String? {
    (try? Data(contentsOf: root.appendingPathComponent(path))).map { String(decoding: $0, as: UTF8.self) }
}

/// The outside tree's path as it appears inside the root when an absolute name is contained.
private func inside(_ sandbox: Sandbox, _ rest: String) -> String {
    String(sandbox.outsidePath.dropFirst()) + "/" + rest
}

extension HostileCase {
    static let all: [HostileCase] = [
        // Path traversal in names (zip-slip, Docker CVE-2014-6407/-9356 family).
        HostileCase(
            name: "relative .. in a name", origin: "zip-slip; docker CVE-2014-6407",
            layers: { _ in [entries(.file("../outside/pwned", "x"))] },
            outcome: .refused(.unsafePath, "\"..\" component")),
        HostileCase(
            name: ".. deep inside a name", origin: "zip-slip",
            layers: { _ in [entries(.file("a/b/../../../outside/pwned", "x"))] },
            outcome: .refused(.unsafePath, "\"..\" component")),
        HostileCase(
            name: "./.. prefix", origin: "runc-style .. handling",
            layers: { _ in [entries(.file("./../outside/pwned", "x"))] },
            outcome: .refused(.unsafePath, "\"..\" component")),
        HostileCase(
            name: "directory named ..", origin: "tar path traversal",
            layers: { _ in [entries(.dir("../"))] },
            outcome: .refused(.unsafePath, "\"..\" component")),
        HostileCase(
            name: "absolute name at a host path", origin: "GNU tar --absolute-names; CVE-2001-1267",
            layers: { sandbox in [entries(.file(sandbox.outsidePath + "/pwned", "x"))] },
            outcome: .contained { root, sandbox in contents(root, inside(sandbox, "pwned")) == "x" }),
        HostileCase(
            name: "Windows-style ..\\ separators", origin: "zip-slip (Windows)",
            layers: { _ in [entries(.file("..\\..\\outside\\pwned", "x"))] },
            outcome: .contained { root, _ in contents(root, "..\\..\\outside\\pwned") == "x" }),

        // Symbolic links planted earlier in the same layer.
        HostileCase(
            name: "symlinked parent, relative target", origin: "docker CVE-2014-9356; containerd/moby tar breakouts",
            layers: { _ in [entries(.symlink("evil", to: "../outside"), .file("evil/pwned", "x"))] },
            outcome: .contained { root, _ in contents(root, "outside/pwned") == "x" && type(root, "evil") == "symlink" }
        ),
        HostileCase(
            name: "symlinked parent, absolute host target", origin: "docker CVE-2014-9356",
            layers: { sandbox in [entries(.symlink("evil", to: sandbox.outsidePath), .file("evil/pwned", "x"))] },
            outcome: .contained { root, sandbox in contents(root, inside(sandbox, "pwned")) == "x" }),
        HostileCase(
            name: "symlink to /", origin: "go-containerregistry and kaniko extraction bugs",
            layers: { sandbox in
                [entries(.symlink("slash", to: "/"), .file("slash/" + sandbox.outsidePath + "/pwned", "x"))]
            },
            outcome: .contained { root, sandbox in contents(root, inside(sandbox, "pwned")) == "x" }),
        HostileCase(
            name: "symlink chain climbing out", origin: "CVE-2018-15664 (symlink resolution)",
            layers: { _ in
                [
                    entries(
                        .symlink("a", to: "b"), .symlink("b", to: "c"), .dir("c/"),
                        .symlink("c/up", to: "../../../../.."),
                        .symlink("b2", to: "c/up/outside"), .file("b2/pwned", "x"))
                ]
            },
            outcome: .contained { root, _ in contents(root, "outside/pwned") == "x" }),
        HostileCase(
            name: "deep relative symlink with many ..", origin: "runc-style .. handling",
            layers: { _ in
                [
                    entries(
                        .dir("a/"), .dir("a/b/"), .symlink("a/b/c", to: "../../../../../../../../../.."),
                        .file("a/b/c/pwned", "x"))
                ]
            },
            outcome: .contained { root, _ in contents(root, "pwned") == "x" }),
        HostileCase(
            name: "symlink to /proc/self/root (a magic link)", origin: "runc CVE-2019-5736 family; CVE-2024-21626",
            layers: { sandbox in
                [entries(.symlink("p", to: "/proc/self/root"), .file("p" + sandbox.outsidePath + "/pwned", "x"))]
            },
            outcome: .contained { root, sandbox in contents(root, "proc/self/root/" + inside(sandbox, "pwned")) == "x" }
        ),
        HostileCase(
            name: "dangling symlink used as a parent", origin: "containerd fs.RootPath",
            layers: { _ in [entries(.symlink("s", to: "/nonexistent/deep"), .file("s/x", "x"))] },
            outcome: .contained { root, _ in contents(root, "nonexistent/deep/x") == "x" }),
        HostileCase(
            name: "symlink loop", origin: "ELOOP denial of service",
            layers: { _ in [entries(.symlink("x", to: "y"), .symlink("y", to: "x"), .file("x/pwned", "x"))] },
            outcome: .refused(.symlinkLoop, "more than 40 symbolic links")),
        HostileCase(
            name: "41 chained symlinks", origin: "ELOOP limit",
            layers: { _ in
                [
                    .entries(
                        (0..<41).map { .symlink("l\($0)", to: "l\($0 + 1)") } + [.dir("l41/"), .file("l0/pwned", "x")])
                ]
            },
            outcome: .refused(.symlinkLoop, "more than 40 symbolic links")),

        // Symbolic links planted by an earlier layer.
        HostileCase(
            name: "symlink from a lower layer used as a parent", origin: "docker layer breakouts (CVE-2014-9356)",
            layers: { sandbox in
                [
                    entries(.symlink("evil", to: sandbox.outsidePath)),
                    entries(.file("evil/pwned", "x"), .file("evil/dir/file", "overwritten")),
                ]
            },
            outcome: .contained { root, sandbox in contents(root, inside(sandbox, "pwned")) == "x" }),
        HostileCase(
            name: "symlink replaces a directory in the same layer, then a file is written through it",
            origin: "CVE-2018-15664 (symlink-exchange), static form",
            layers: { sandbox in
                [entries(.dir("d/"), .file("d/a", "a"), .symlink("d", to: sandbox.outsidePath), .file("d/pwned", "x"))]
            },
            outcome: .contained { root, sandbox in
                contents(root, inside(sandbox, "pwned")) == "x" && !exists(root, "d/a")
            }),
        HostileCase(
            name: "symlink replaces a directory across layers",
            origin: "CVE-2018-15664 (symlink-exchange), static form",
            layers: { _ in
                [
                    entries(.dir("d/"), .file("d/a", "a")), entries(.symlink("d", to: "../outside")),
                    entries(.file("d/pwned", "x")),
                ]
            },
            outcome: .contained { root, _ in contents(root, "outside/pwned") == "x" }),
        HostileCase(
            name: "regular file over a symlink to a host file",
            origin: "registry-image test-image-symlinks; tar --overwrite",
            layers: { sandbox in
                [entries(.symlink("passwd", to: sandbox.outsidePath + "/secret")), entries(.file("passwd", "pwned"))]
            },
            outcome: .contained { root, _ in type(root, "passwd") == "file" && contents(root, "passwd") == "pwned" }),
        HostileCase(
            name: "regular file over a relative symlink out, same layer", origin: "tar --overwrite following links",
            layers: { _ in [entries(.symlink("passwd", to: "../outside/secret"), .file("passwd", "pwned"))] },
            outcome: .contained { root, _ in contents(root, "passwd") == "pwned" }),
        HostileCase(
            name: "directory entry over a symlink to a host directory (chmod through the link)",
            origin: "containerd CVE-2021-32760",
            layers: { sandbox in
                [
                    entries(.symlink("s", to: sandbox.outsidePath + "/dir")),
                    entries(.dir("s/", mode: 0o777, uid: 1234, gid: 1234)),
                ]
            },
            outcome: .contained { root, _ in type(root, "s") == "dir" }),
        HostileCase(
            name: "symlink entry with mode 0777 pointing at a host file",
            origin: "containerd CVE-2021-32760 (chmod follows links)",
            layers: { sandbox in [entries(.symlink("s", to: sandbox.outsidePath + "/secret", mode: 0o777))] },
            outcome: .contained { root, _ in type(root, "s") == "symlink" }),

        // Hardlinks.
        HostileCase(
            name: "hardlink to an absolute host path", origin: "docker CVE-2014-6407; hardlink-to-outside",
            layers: { sandbox in [entries(.hardlink("hl", to: sandbox.outsidePath + "/secret"))] },
            outcome: .refused(.badHardlink, "does not exist inside the root")),
        HostileCase(
            name: "hardlink with .. to a host file", origin: "hardlink-to-outside",
            layers: { _ in [entries(.hardlink("hl", to: "../outside/secret"))] },
            outcome: .refused(.unsafePath, "the hardlink target has a \"..\" component")),
        HostileCase(
            name: "hardlink through a symlinked parent", origin: "moby pkg/archive hardlink handling",
            layers: { sandbox in
                [entries(.symlink("evil", to: sandbox.outsidePath), .hardlink("hl", to: "evil/secret"))]
            },
            outcome: .refused(.badHardlink, "does not exist inside the root")),
        HostileCase(
            name: "hardlink to a symlink pointing outside, then a file written to it",
            origin: "hardlink-to-symlink confusion",
            layers: { _ in
                [
                    entries(.symlink("s", to: "../outside/secret"), .hardlink("hl", to: "s")),
                    entries(.file("hl", "pwned")),
                ]
            },
            outcome: .contained { root, _ in type(root, "s") == "symlink" && contents(root, "hl") == "pwned" }),
        HostileCase(
            name: "file written over a hardlink does not write through it", origin: "tar hardlink overwrite",
            layers: { _ in
                [entries(.file("target", "original"), .hardlink("hl", to: "target")), entries(.file("hl", "pwned"))]
            },
            outcome: .contained { root, _ in contents(root, "target") == "original" && contents(root, "hl") == "pwned" }
        ),
        HostileCase(
            name: "hardlink to a directory", origin: "link(2) on directories",
            layers: { _ in [entries(.dir("d/"), .hardlink("hl", to: "d"))] },
            outcome: .refused(.badHardlink, "is a directory")),
        HostileCase(
            name: "hardlink to the root", origin: "link(2) on directories",
            layers: { _ in [entries(.hardlink("hl", to: "./"))] },
            outcome: .refused(.badHardlink, "hardlink to the root directory")),
        HostileCase(
            name: "hardlink to a missing target", origin: "malformed layer",
            layers: { _ in [entries(.hardlink("hl", to: "nowhere"))] },
            outcome: .refused(.badHardlink, "does not exist inside the root")),

        // Whiteouts.
        HostileCase(
            name: "whiteout of ..", origin: "whiteout escape",
            layers: { _ in [entries(.file("a/x", "x"), .file("a/.wh...", ""))] },
            outcome: .refused(.badWhiteout, "not \"..\"")),
        HostileCase(
            name: "whiteout named .wh. (no name)", origin: "whiteout escape",
            layers: { _ in [entries(.file(".wh.", ""))] },
            outcome: .refused(.badWhiteout, "must name a file")),
        HostileCase(
            name: "whiteout with .. in its path", origin: "whiteout escape",
            layers: { _ in [entries(.file("../.wh.outside", ""))] },
            outcome: .refused(.unsafePath, "\"..\" component")),
        HostileCase(
            name: "whiteout through a symlink to a host directory",
            origin: "whiteout escape; registry-image RemoveAll(path)",
            layers: { sandbox in
                [
                    entries(.symlink("evil", to: sandbox.outsidePath)),
                    entries(.whiteout("evil/secret"), .whiteout("evil/dir")),
                ]
            },
            outcome: .contained { root, _ in type(root, "evil") == "symlink" }),
        HostileCase(
            name: "opaque marker through a symlink to a host directory", origin: "opaque whiteout escape",
            layers: { sandbox in [entries(.symlink("evil", to: sandbox.outsidePath)), entries(.opaque("evil"))] },
            outcome: .contained { root, _ in type(root, "evil") == "symlink" }),
        HostileCase(
            name: "whiteout of a directory holding links out",
            origin: "BuildKit CVE-2024-23652 (removal followed links)",
            layers: { sandbox in
                [
                    entries(
                        .dir("d/"), .symlink("d/abs", to: sandbox.outsidePath), .symlink("d/rel", to: "../../outside"),
                        .hardlink("d/abs2", to: "d/abs")), entries(.whiteout("d")),
                ]
            },
            outcome: .contained { root, _ in !exists(root, "d") }),
        HostileCase(
            name: "opaque directory holding links out", origin: "BuildKit CVE-2024-23652",
            layers: { sandbox in
                [
                    entries(
                        .dir("d/"), .symlink("d/abs", to: sandbox.outsidePath), .symlink("d/rel", to: "../../outside")),
                    entries(.dir("d/"), .opaque("d")),
                ]
            },
            outcome: .contained { root, _ in type(root, "d") == "dir" && !exists(root, "d/abs") }),
        HostileCase(
            name: "file replacing a directory holding links out", origin: "os.RemoveAll on replacement",
            layers: { sandbox in
                [
                    entries(
                        .dir("d/"), .symlink("d/abs", to: sandbox.outsidePath), .dir("d/sub/"),
                        .symlink("d/sub/up", to: "/")), entries(.file("d", "file")),
                ]
            },
            outcome: .contained { root, _ in contents(root, "d") == "file" }),

        // The root itself.
        HostileCase(
            name: "symlink named . (replace the root)", origin: "umoci CVE-2021-29136",
            layers: { sandbox in [entries(.symlink(".", to: sandbox.outsidePath), .file("pwned", "x"))] },
            outcome: .refused(.unsafePath, "root directory itself must be a directory")),
        HostileCase(
            name: "symlink named /", origin: "umoci CVE-2021-29136",
            layers: { sandbox in [entries(.symlink("/", to: sandbox.outsidePath))] },
            outcome: .refused(.unsafePath, "root directory itself must be a directory")),
        HostileCase(
            name: "regular file named ./", origin: "umoci CVE-2021-29136",
            layers: { _ in [entries(.file("./", "x"))] },
            outcome: .refused(.unsafePath, "root directory itself must be a directory")),
        HostileCase(
            name: "opaque marker at the root", origin: "whiteout of everything",
            layers: { _ in [entries(.file("lower", "l")), entries(.file("upper", "u"), .opaque(""))] },
            outcome: .contained { root, _ in !exists(root, "lower") && contents(root, "upper") == "u" }),

        // Devices and special files.
        HostileCase(
            name: "block device for the host disk", origin: "device nodes in images",
            layers: { _ in [entries(.device("dev/sda", block: true, major: 8, minor: 0, mode: 0o666))] },
            outcome: .contained { root, _ in !Unpacker.runningAsRoot || type(root, "dev/sda") == "block" }),
        HostileCase(
            name: "file written over a fifo (would block)", origin: "tar extraction opening existing special files",
            layers: { _ in [entries(.fifo("f")), entries(.file("f", "data"))] },
            outcome: .contained { root, _ in contents(root, "f") == "data" }),
        HostileCase(
            name: "file written over a character device", origin: "tar extraction opening existing special files",
            layers: { _ in [entries(.device("null", major: 1, minor: 3)), entries(.file("null", "data"))] },
            outcome: .contained { root, _ in contents(root, "null") == "data" }),

        // Malformed names.
        HostileCase(
            name: "NUL byte in a PAX path", origin: "C string truncation",
            layers: { _ in
                var tar = RawTar()
                tar.entry(
                    name: "placeholder", type: "0", size: 1, body: Data("x".utf8),
                    pax: [("path", "ok\u{0}/../../outside/pwned")])
                tar.end()
                return [.raw(tar.bytes)]
            },
            // The tar reader refuses it before the unpacker sees it (the unpacker's own
            // check on names stays as a second line).
            outcome: .refused(.unreadableLayer, "NUL byte")),
        HostileCase(
            name: "name longer than PATH_MAX", origin: "ENAMETOOLONG / buffer overflows",
            layers: { _ in [entries(.file(String(repeating: "a/", count: 2100) + "f", "x"))] },
            outcome: .refused(.nameTooLong, "the limit is 4096")),
        HostileCase(
            name: "component longer than NAME_MAX", origin: "ENAMETOOLONG",
            layers: { _ in [entries(.file(String(repeating: "n", count: 300), "x"))] },
            outcome: .refused(.nameTooLong, "the limit is 255")),
        HostileCase(
            name: "empty components", origin: "path normalisation",
            layers: { _ in [entries(.file("a//b///c", "x"))] },
            outcome: .contained { root, _ in contents(root, "a/b/c") == "x" }),
        HostileCase(
            name: "file below a regular file", origin: "ENOTDIR confusion",
            layers: { _ in [entries(.file("f", "f"), .file("f/x", "x"))] },
            outcome: .refused(.notADirectory, "is not a directory")),
        HostileCase(
            name: "symlink with an over-long target", origin: "PATH_MAX",
            layers: { _ in [entries(.symlink("s", to: String(repeating: "x", count: 5000)))] },
            outcome: .refused(.badSymlink, "longer than 4096")),
        HostileCase(
            name: "entry of an unknown type", origin: "tar type confusion",
            layers: { _ in
                var tar = RawTar()
                tar.entry(name: "strange", type: "Z")
                tar.entry(name: "after", type: "0", size: 1, body: Data("x".utf8))
                tar.end()
                return [.raw(tar.bytes)]
            },
            outcome: .contained { root, _ in !exists(root, "strange") && contents(root, "after") == "x" }),
        HostileCase(
            name: "body shorter than its header claims", origin: "truncated layers",
            layers: { _ in
                var tar = RawTar()
                tar.entry(name: "big", type: "0", size: 1 << 40, body: Data(count: 512))
                return [.raw(tar.bytes)]
            },
            outcome: .refused(.unreadableLayer, "cannot read")),
    ]
}

@Suite("Hostile layers")
struct HostileLayerTests {
    @Test(
        "is refused with a clear error or contained, and nothing outside the root changes", arguments: HostileCase.all)
    func hostile(_ trick: HostileCase) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let before = try sandbox.sentinel()
        let result = Result { () throws -> Void in
            for (index, layer) in trick.layers(sandbox).enumerated() {
                let source: any ByteSource
                switch layer {
                case .entries(let list):
                    let file = sandbox.scratch.appendingPathComponent("layer-\(index).tar")
                    try writeLayer(list, to: file)
                    source = try FileSource(path: file.path)
                case .raw(let bytes):
                    source = DataSource(bytes)
                }
                try Unpacker(root: sandbox.root).apply(layer: source)
            }
        }
        let after = try sandbox.sentinel()
        #expect(after.differences(from: before, ignoringInodes: false) == [], "something outside the root changed")

        switch (trick.outcome, result) {
        case (.refused(let code, let text), .failure(let error)):
            let unpackError = try #require(error as? UnpackError, "\(error)")
            #expect(unpackError.kind == code, "\(unpackError)")
            #expect(unpackError.description.contains(text), "\(unpackError)")
            #expect(unpackError.entry != nil || code == .unreadableLayer, "the error names no entry: \(unpackError)")
        case (.refused, .success):
            Issue.record("expected a refusal, but the layers applied")
        case (.contained(let check), .success):
            #expect(
                try check(sandbox.root, sandbox), "the layers applied but the result inside the root is not as expected"
            )
        case (.contained, .failure(let error)):
            Issue.record("expected the layers to apply (contained), but: \(error)")
        }
    }
}
