import Archive
import BuildContext
import BuildLock
import CloudAuth
import Errors
import Foundation
import GitSource
import HTTP
import ImageLayout
import OCI
import Registry
import Resource
import RootFS
import Signing
import Spawn
import TagPolicy
import Testing

@testable import Builder

/// Every module's error in the one shape: a kind, and a message that is the error's one line.
@Suite struct ErrorShapeTests {
    /// A kind's name and the rendered error of each module's error, built as its module builds them.
    static let errors: [(kind: String, message: String, rendered: String)] =
        [
            line(ArchiveError(.digestMismatch, "layer sha256:ab: expected sha256:cd")),
            line(HTTPError(.tls, "GET https://r.example/v2/: certificate not trusted")),
            line(SpawnError("`buildah` was not found in PATH (/usr/bin); install it or put it on the PATH")),
            line(CloudAuthError(.refused, "assume role arn:aws:iam::1:role/push", "HTTP 403 AccessDenied")),
            line(LayoutError("/tmp/x is not an OCI image layout: it has no oci-layout file")),
            line(UnpackError(.unsafePath, "a .. component leaves the root")),
            line(GitSourceError(.unreadableRemote, "cannot read https://example.com/repo.git: not found")),
            line(LockError(.timedOut, "LOCK_TIMEOUT=1s passed while main was held")),
            line(InputError("source.repository: required")),
            line(SigningError.wrongPassword),
            line(BuildError(.missingBase, "image arg BASE: /tmp/x holds no image")),
            line(Buildah.Failure("buildah bud failed: exit 1")),
            line(BuildConfiguration.ValidationError("LOCK_TTL=abc: expected a duration")),
            line(AssemblyRefusal(line: 3, "RUN executes a program")),
            line(Manifest.DecodeError(reason: "not JSON")),
            line(BeneathDirectory.Refusal("leaves the directory")),
            line(DocumentNesting.Refusal("tags.yml is nested deeper than 64")),
            line(DockerfileStages.ParseError("Dockerfile line 1: FROM needs an image")),
            line(Dockerignore.ValidationError("bad pattern [")),
            line(BuildInputs.ReadError("cannot read a")),
            line(VersionConstraint.ValidationError("invalid constraint >>1")),
            line(TagTemplate.ValidationError("an empty tag template")),
            line(ImageGraph.Failure("a cycle: a → b → a")),
            line(ImagePlanner.Failure("no image directories")),
        ] + validations()

    static func line<E: SlipwayError>(_ error: E) -> (kind: String, message: String, rendered: String) {
        (error.kind.description, error.message, "\(error)")
    }

    /// The identifier types' own validation errors, from text each refuses.
    static func validations() -> [(kind: String, message: String, rendered: String)] {
        var lines: [(kind: String, message: String, rendered: String)] = []
        do throws(OCI.Tag.ValidationError) { _ = try OCI.Tag("-bad") } catch { lines.append(line(error)) }
        do throws(Digest.ValidationError) { _ = try Digest("sha256:xyz") } catch { lines.append(line(error)) }
        do throws(Repository.ValidationError) { _ = try Repository("UPPER/case") } catch { lines.append(line(error)) }
        do throws(GitBranchName.ValidationError) { _ = try GitBranchName("-x") } catch { lines.append(line(error)) }
        do throws(GitCommitID.ValidationError) { _ = try GitCommitID("abc") } catch { lines.append(line(error)) }
        return lines
    }

    @Test func everyErrorRendersAsItsMessageInOneLine() {
        #expect(Self.errors.count == 29)
        for error in Self.errors {
            #expect(error.rendered == error.message, "\(error.kind)")
            #expect(!error.rendered.contains("\n"), "\(error.kind)")
            #expect(!error.kind.isEmpty)
        }
    }

    @Test func kindsNameWhatWentWrong() {
        #expect(Self.errors.map(\.kind).contains("missing base"))
        #expect(Self.errors.map(\.kind).contains("invalid tag"))
        #expect(SigningError.wrongPassword.kind == .invalidKey)
    }

    /// Richer errors keep one line: a layer entry's name is quoted before the message.
    @Test func richerErrorsStayOneLine() {
        let unpack = UnpackError(.unsafePath, entry: "a\nb", "a .. component")
        #expect("\(unpack)" == #"layer entry "a\u{a}b": a .. component"#)
        let registry = RegistryError(
            .notFound, operation: "GET manifest team/app:1", status: 404, hint: "push it first")
        #expect("\(registry)" == registry.message)
        #expect(registry.message == "GET manifest team/app:1: not found (HTTP 404): push it first")
    }

    /// An `IMAGE_ARG_*` directory that holds no image is a missing base, not an unsupported build.
    @Test func imageArgumentWithoutAnImageIsAMissingBase() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("errors-\(UUID().uuidString)")
        let directory = root.appendingPathComponent("base")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let error = #expect(throws: BuildError.self) {
            _ = try ImageArgument(name: "BASE", directory: directory, scratch: root, links: root)
        }
        #expect(error?.kind == .missingBase)
        #expect(
            error?.message
                == "image arg BASE: \(directory.path) holds no image (an OCI layout, oci/, image/ or image.tar)")
    }
}
