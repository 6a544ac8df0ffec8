import Foundation
import TestSupport
import Testing

/// Seed 004 over its life, played from ci/pipelines/004-multiarch-environments.yml through
/// the model of Concourse: a multi-arch image whose Dockerfile has a RUN (cross-built, no
/// qemu) is built on every change of src/, deployed to dev, promoted to test and prod by
/// adding tags; a second change reaches dev only. Invariants after every build.
@Suite("seed 004 lifecycle: multi-arch images promoted dev → test → prod", .serialized)
struct Seed004LifecycleTests {
    static let app = "org/app"

    static func appFiles(_ marker: String) -> [String: String] {
        [
            "src/docker/Dockerfile": """
            FROM --platform=$BUILDPLATFORM scratch AS build
            COPY src/docker/busybox /bin/busybox
            COPY src/docker/marker /marker
            ARG TARGETARCH
            RUN ["/bin/busybox", "sh", "-c", "echo $TARGETARCH > /arch && /bin/busybox cp /marker /version"]
            FROM scratch
            COPY --from=build /arch /version /

            """,
            "src/docker/marker": "\(marker)\n",
        ]
    }

    @Test func buildDeployPromote() async throws {
        try await Lifecycle.run(files: Self.appFiles("1.0")) { world in
            try world.model.setPipeline(
                "app", file: URL(fileURLWithPath: Lifecycle.pipeline("004-multiarch-environments.yml")), vars: [:])
            world.invariants.learn(world.model)
            #expect(try world.settle().sorted() == ["app/build", "app/deploy-dev"], "\(world.model.log)")
            let c1 = String(try world.repository.head().prefix(12))
            let first = try #require(try world.digest(Self.app, c1))
            #expect(try world.digest(Self.app, "dev") == first && world.digest(Self.app, "latest") == first)
            let platforms = try runProcess(
                "/usr/bin/skopeo",
                [
                    "inspect", "--raw", "--tls-verify=false",
                    "--creds", "\(world.registry.username ?? ""):\(world.registry.password ?? "")",
                    "docker://\(world.host)/\(Self.app):\(c1)",
                ])
            #expect(
                platforms.stdoutString.contains("arm64") && platforms.stdoutString.contains("amd64"),
                "\(platforms.stdoutString)\(platforms.stderrString)")

            try world.model.triggerJob("app", "promote-to-test")
            #expect(try world.settle() == ["app/deploy-test"])
            try world.model.triggerJob("app", "promote-to-prod")
            #expect(try world.settle() == ["app/deploy-prod"])
            #expect(try world.digest(Self.app, "test") == first && world.digest(Self.app, "prod") == first)

            // A second change reaches dev only; test and prod stay until promoted.
            let c2 = String(try world.commit("1.1", Self.appFiles("1.1")).prefix(12))
            #expect(try world.settle().sorted() == ["app/build", "app/deploy-dev"])
            let second = try #require(try world.digest(Self.app, c2))
            #expect(try world.digest(Self.app, "dev") == second)
            #expect(try world.digest(Self.app, "test") == first && world.digest(Self.app, "prod") == first)
            try world.invariants.checkPulls()
        }
    }
}
