import Foundation
import TestSupport
import Testing

/// Seed 002's build logic run standalone, as the seed runs scripts/build.py on any machine:
/// `build-task build-all` over a repository of image directories. (The pipelines are played
/// through the model of Concourse in Lifecycle/Seed002LifecycleTests.)
@Suite("seed 002: build-task build-all, the build logic run standalone", .serialized)
struct Seed002BuildAllTests {
    static let tractorDockerfile = """
        ARG REGISTRY
        ARG BASE_TAG=main
        FROM ${REGISTRY}/fornax/base_image:${BASE_TAG}
        COPY marker /tractor-marker
        RUN ["/bin/busybox", "sh", "-c", "cat /tractor-marker >> /built"]

        """

    /// The gap the seed admits: a change to base_image did not rebuild tractor. With
    /// `build-task build-all` (the build logic, standalone, as the seed runs scripts/build.py),
    /// an unchanged repository builds nothing and a base change rebuilds exactly its dependents.
    @Test func aBaseChangeRebuildsExactlyItsDependents() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try await withTemporaryDirectory { directory in
                    var files = SeedFixture.imageFiles("images/base_image", marker: "base v1")
                    files["images/tractor/Dockerfile"] = Self.tractorDockerfile
                    files["images/tractor/marker"] = "tractor v1\n"
                    files.merge(SeedFixture.imageFiles("images/heasoft", marker: "heasoft v1")) { $1 }
                    _ = try SeedFixture.commit(repository, "three images", files: files)
                    func buildAll(_ name: String) throws -> (String, [String: Bool]) {
                        let output = directory.appending("out-\(name)")
                        let result = try runProcess(
                            try builtProduct("build-task").path, ["build-all"],
                            environment: [
                                "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSTemporaryDirectory(),
                                "ROOT": repository.path.appendingPathComponent("images").path,
                                "REPOSITORY": "\(registry.host)/fornax", "IMAGE_TAG": "main", "PUSH": "true",
                                "BUILD_ARG_REGISTRY": registry.host,
                                "REGISTRY_INSECURE": "true", "CACHE": directory.appending("cache").path,
                                "OUTPUT": output.path,
                            ], currentDirectory: directory.url)
                        try #require(result.succeeded, "\(result.stderrString)")
                        var reused: [String: Bool] = [:]
                        for image in ["base_image", "tractor", "heasoft"] {
                            let record =
                                try JSONSerialization.jsonObject(
                                    with: Data(contentsOf: output.appendingPathComponent("\(image)/build.json")))
                                as? [String: Any]
                            reused[image] = record?["reused"] as? Bool
                        }
                        return (result.stdoutString, reused)
                    }
                    let (_, first) = try buildAll("first")
                    #expect(first == ["base_image": false, "tractor": false, "heasoft": false])
                    let (_, unchanged) = try buildAll("unchanged")
                    #expect(
                        unchanged == ["base_image": true, "tractor": true, "heasoft": true],
                        "an unchanged graph builds nothing")
                    let oldBase = try SeedFixture.digest(registry, "fornax/base_image", "main")

                    _ = try repository.commit("base v2", files: ["images/base_image/marker": "base v2\n"])
                    let (_, changed) = try buildAll("changed")
                    #expect(
                        changed == ["base_image": false, "tractor": false, "heasoft": true],
                        "the base and exactly its dependents")
                    let newBase = try SeedFixture.digest(registry, "fornax/base_image", "main")
                    #expect(newBase != oldBase)
                    let inspected = try runProcess(
                        "skopeo", ["inspect", "--tls-verify=false", "docker://\(registry.host)/fornax/tractor:main"]
                    ).checked()
                    let labels =
                        (try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])?["Labels"]
                        as? [String: String]
                    #expect(
                        labels?["org.opencontainers.image.base.digest"] == newBase, "tractor is built on the new base")
                }
            }
        }
    }
}
