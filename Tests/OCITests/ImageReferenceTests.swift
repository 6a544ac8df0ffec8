import Testing

@testable import OCI

@Suite("ImageReference")
struct ImageReferenceTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var input: String
        var registry: String
        var repository: String
        var tag: String?
        var digest: String?
        var canonical: String

        var testDescription: String { input }
    }

    static let valid: [Case] = [
        Case(
            input: "busybox", registry: "docker.io", repository: "library/busybox",
            canonical: "docker.io/library/busybox:latest"),
        Case(
            input: "busybox:1.36", registry: "docker.io", repository: "library/busybox", tag: "1.36",
            canonical: "docker.io/library/busybox:1.36"),
        Case(
            input: "user/app:1.0", registry: "docker.io", repository: "user/app", tag: "1.0",
            canonical: "docker.io/user/app:1.0"),
        Case(
            input: "docker.io/busybox", registry: "docker.io", repository: "library/busybox",
            canonical: "docker.io/library/busybox:latest"),
        Case(
            input: "index.docker.io/library/busybox", registry: "docker.io", repository: "library/busybox",
            canonical: "docker.io/library/busybox:latest"),
        Case(
            input: "registry-1.docker.io/user/app", registry: "docker.io", repository: "user/app",
            canonical: "docker.io/user/app:latest"),
        Case(input: "localhost/app", registry: "localhost", repository: "app", canonical: "localhost/app:latest"),
        Case(
            input: "localhost:5000/app", registry: "localhost:5000", repository: "app",
            canonical: "localhost:5000/app:latest"),
        Case(
            input: "localhost:5000", registry: "docker.io", repository: "library/localhost", tag: "5000",
            canonical: "docker.io/library/localhost:5000"),
        Case(
            input: "127.0.0.1:5000/team/app:tag@\(Fixtures.digestA)", registry: "127.0.0.1:5000",
            repository: "team/app",
            tag: "tag", digest: Fixtures.digestA, canonical: "127.0.0.1:5000/team/app:tag@\(Fixtures.digestA)"
        ),
        Case(
            input: "127.0.0.1:5000/team/app@\(Fixtures.digestB)", registry: "127.0.0.1:5000", repository: "team/app",
            digest: Fixtures.digestB, canonical: "127.0.0.1:5000/team/app@\(Fixtures.digestB)"
        ),
        Case(
            input: "ghcr.io/org/img@\(Fixtures.digestA)", registry: "ghcr.io", repository: "org/img",
            digest: Fixtures.digestA, canonical: "ghcr.io/org/img@\(Fixtures.digestA)"
        ),
        Case(input: "ghcr.io/org/img", registry: "ghcr.io", repository: "org/img", canonical: "ghcr.io/org/img:latest"),
        Case(input: "ghcr.io/img", registry: "ghcr.io", repository: "img", canonical: "ghcr.io/img:latest"),
        Case(input: "[::1]:5000/x", registry: "[::1]:5000", repository: "x", canonical: "[::1]:5000/x:latest"),
        Case(input: "[::1]/x:v1", registry: "[::1]", repository: "x", tag: "v1", canonical: "[::1]/x:v1"),
        Case(
            input: "Registry.Example.com/a/b/c:V1", registry: "registry.example.com", repository: "a/b/c", tag: "V1",
            canonical: "registry.example.com/a/b/c:V1"),
        Case(
            input: "my-app_v2.x", registry: "docker.io", repository: "library/my-app_v2.x",
            canonical: "docker.io/library/my-app_v2.x:latest"),
    ]

    @Test("parses", arguments: valid)
    func parse(_ c: Case) throws {
        let reference = try ImageReference(c.input)
        #expect(reference.registry.rawValue == c.registry)
        #expect(reference.repository.rawValue == c.repository)
        #expect(reference.tag?.rawValue == c.tag)
        #expect(reference.digest?.rawValue == c.digest)
        #expect(reference.description == c.canonical)
        // The canonical form parses back to the same reference, apart from the
        // `:latest` that description adds when there is neither tag nor digest.
        var reparsed = try ImageReference(c.canonical)
        if c.tag == nil, c.digest == nil { reparsed.tag = nil }
        #expect(reparsed == reference)
    }

    @Test func referenceIsDigestThenTagThenLatest() throws {
        #expect(try ImageReference("busybox").reference == .tag(OCI.Tag("latest")))
        #expect(try ImageReference("busybox:1.36").reference == .tag(OCI.Tag("1.36")))
        #expect(try ImageReference("busybox:1.36@\(Fixtures.digestA)").reference == .digest(Digest(Fixtures.digestA)))
    }

    @Test func name() throws {
        #expect(try ImageReference("busybox:1").name == "docker.io/library/busybox")
    }

    @Test func memberwise() throws {
        let reference = ImageReference(repository: try Repository("library/busybox"), tag: try OCI.Tag("1"))
        #expect(reference.description == "docker.io/library/busybox:1")
    }

    @Test(
        "rejects",
        arguments: [
            ("Busybox", "must be lowercase"),
            ("user/App", "must be lowercase"),
            ("app:", "tag is empty"),
            ("app@sha256:short", #"digest "sha256:short""#),
            ("app@", #"digest """#),
            ("a//b", "has an empty component"),
            ("/app", "has an empty component"),
            ("app/", "has an empty component"),
            ("app:" + String(repeating: "t", count: 129), "tag \""),
            ("app:bad/tag", #"registry host "app:bad""#),
            ("app:-x", #"tag "-x""#),
            ("", "repository path is empty"),
            ("ghcr.io/", "repository path is empty"),
            ("ghcr.io:0/app", #"registry host "ghcr.io:0""#),
            ("[::1/app", #"registry host "[::1""#),
            ("app name", "is not lowercase components"),
            ("app@latest", #"digest "latest""#),  // a misspelt tag, not credentials: named
            ("registry.example.com/" + String(repeating: "a", count: 240), "at most 255 including the host"),
        ])
    func invalid(_ input: String, _ reasonFragment: String) {
        let error = #expect(throws: ImageReference.ValidationError.self) { try ImageReference(input) }
        #expect(error?.value == input)
        #expect(error?.reason.contains(reasonFragment) == true, "\(error?.reason ?? "no error")")
        #expect(error?.description.hasPrefix("invalid image reference \"") == true)
    }

    @Test(
        arguments: [
            ("ghcr.io/org/app", "ghcr.io", "org/app"),
            ("localhost/app", "localhost", "app"),
            ("host:5000/app:1", "host:5000", "app:1"),
            ("org/app", nil, "org/app"),
            ("app:1", nil, "app:1"),
        ] as [(String, String?, String)])
    func takeHostRemovesOnlyAHost(_ input: String, _ host: String?, _ rest: String) {
        var name = Substring(input)
        #expect(ImageReference.takeHost(from: &name).map(String.init) == host)
        #expect(name == rest)
    }
}
