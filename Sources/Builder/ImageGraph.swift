import BuildContext
import Errors
import OCI

/// One image directory of a graph root (`build-task plan --root DIR`): a directory under the
/// root holding a `Dockerfile`, built into `<REPOSITORY>/<name>`.
public struct GraphImage: Sendable, Equatable {
    /// The directory's path under the root (`base`, `tools/lint`): what the plan prints and
    /// what the repository ends with.
    public var name: String
    /// The directory as git and people see it: relative to the checkout's top (`images/base`)
    /// when the root is in a git checkout, else the root as given joined with the name.
    public var path: String
    /// `<REPOSITORY>/<name>`. Text rather than a validated reference: `--emit-pipeline`
    /// keeps a `((registry))` for Concourse to fill in; everything that reaches a registry
    /// parses it first.
    public var repository: String
    /// Every external `FROM` image of the Dockerfile, with `ARG` defaults and build args
    /// applied (``DockerfileStages/externalBases``).
    public var bases: [String]

    public init(name: String, path: String, repository: String, bases: [String]) {
        self.name = name
        self.path = path
        self.repository = repository
        self.bases = bases
    }

    /// Reads the bases from the Dockerfile's text, as a build would see them: `buildArgs`
    /// (which hold `REPOSITORY`) fill `FROM ${REPOSITORY}/base:${BASE_TAG}`.
    public init(name: String, path: String, repository: String, dockerfile text: String, buildArgs: [String: String])
        throws(ImageGraph.Failure)
    {
        let stages: DockerfileStages
        do { stages = try DockerfileStages(text, buildArgs: buildArgs) } catch {
            throw ImageGraph.Failure("\(path)/Dockerfile: \(error)")
        }
        self.init(name: name, path: path, repository: repository, bases: stages.externalBases)
    }
}

/// The images of a root and which is built `FROM` which. Pure: no
/// file, registry or git access, so the order, the dependents and cycles are decided here
/// and tested without buildah.
///
/// There is an edge from an image to another when one of its `FROM` images names the other's
/// repository, whatever the tag or digest (`registry.example/fornax/base:main` depends on the
/// image whose repository is `registry.example/fornax/base`).
public struct ImageGraph: Sendable {
    public struct Failure: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<ImageGraph.Failure>
        public var kind: Kind { .invalidGraph }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    /// By name.
    public let images: [GraphImage]
    /// Name → the names of the in-graph images it is built `FROM`, sorted.
    public let dependencies: [String: [String]]
    /// Name → the in-graph `FROM` references that name each dependency (as written, after
    /// substitution): what a build resolves, so what build-all must update first.
    public let references: [String: [String: [String]]]
    /// Every image before the images built on it; among images free to go, by name.
    public let order: [String]

    /// - Throws: ``Failure`` for two images of one name or repository, and for a cycle,
    ///   named by the images' paths: `images/a → images/b → images/a`.
    public init(_ images: [GraphImage]) throws(Failure) {
        let sorted = images.sorted { $0.name < $1.name }
        var byRepository: [String: String] = [:]
        for image in sorted {
            let key = Self.repositoryName(image.repository)
            if let other = byRepository[key] {
                throw Failure(
                    "\(Self.path(of: other, in: sorted)) and \(image.path) are both the image \(image.repository)")
            }
            byRepository[key] = image.name
        }
        if let duplicate = zip(sorted, sorted.dropFirst()).first(where: { $0.name == $1.name }) {
            throw Failure("two images are named \(duplicate.0.name)")
        }
        var dependencies: [String: [String]] = [:]
        var references: [String: [String: [String]]] = [:]
        for image in sorted {
            var named: [String: [String]] = [:]
            for base in image.bases {
                guard let dependency = byRepository[Self.repositoryName(base)] else { continue }
                named[dependency, default: []].append(base)
            }
            dependencies[image.name] = named.keys.sorted()
            references[image.name] = named
        }
        self.images = sorted
        self.dependencies = dependencies
        self.references = references
        if let cycle = Self.cycle(sorted.map(\.name), dependencies) {
            throw Failure(
                "the images depend on each other in a cycle: "
                    + cycle.map { Self.path(of: $0, in: sorted) }.joined(separator: " → "))
        }
        order = Self.topologicalOrder(sorted.map(\.name), dependencies)
    }

    public func image(_ name: String) -> GraphImage? {
        images.first { $0.name == name }
    }

    /// Every image built, directly or through others, `FROM` one of `names` (not `names` themselves).
    public func dependents(of names: Set<String>) -> Set<String> {
        var dependents: [String: [String]] = [:]
        for (image, bases) in dependencies {
            for base in bases { dependents[base, default: []].append(image) }
        }
        var result = Set<String>()
        var queue = Array(names)
        while let next = queue.popLast() {
            for dependent in dependents[next] ?? [] where !result.contains(dependent) {
                result.insert(dependent)
                queue.append(dependent)
            }
        }
        return result.subtracting(names)
    }

    /// What happens to each image, in build order: an image builds when one of its
    /// dependencies builds (`Decision.Reason.dependencies`), else as
    /// `decide` says. `decide` is asked only for images none of whose dependencies build,
    /// so the images it calls changed are followed by every transitive dependent.
    public func plan(_ decide: (GraphImage) throws -> Decision) rethrows -> [PlannedImage] {
        var building = Set<String>()
        var result: [PlannedImage] = []
        for name in order {
            guard let image = image(name) else { continue }
            let changing = (dependencies[name] ?? []).filter { building.contains($0) }
            let decision = changing.isEmpty ? try decide(image) : .build(.dependencies(changing))
            if case .build = decision { building.insert(name) }
            result.append(PlannedImage(image: image, decision: decision))
        }
        return result
    }

    /// `registry/path` of a reference: its tag and digest removed, Docker Hub's names
    /// normalised when it parses as a reference; otherwise (a `((var))` left for Concourse,
    /// an empty tag) cut textually.
    public static func repositoryName(_ reference: String) -> String {
        if let parsed = try? ImageReference(reference) { return parsed.name }
        var text = Substring(reference)
        if let at = text.firstIndex(of: "@") { text = text[..<at] }
        if let colon = text.lastIndex(of: ":"), !text[colon...].contains("/") { text = text[..<colon] }
        return String(text)
    }

    static func path(of name: String, in images: [GraphImage]) -> String {
        images.first { $0.name == name }?.path ?? name
    }

    /// Kahn's algorithm, always taking the smallest name that is free to go.
    static func topologicalOrder(_ names: [String], _ dependencies: [String: [String]]) -> [String] {
        var remaining = Dictionary(uniqueKeysWithValues: names.map { ($0, Set(dependencies[$0] ?? [])) })
        var order: [String] = []
        while let next = remaining.filter({ $0.value.isEmpty }).keys.min() {
            order.append(next)
            remaining[next] = nil
            for key in remaining.keys { remaining[key]?.remove(next) }
        }
        return order
    }

    /// The first cycle a depth-first walk in name order meets, as names starting and ending
    /// with its smallest name; nil when there is none.
    static func cycle(_ names: [String], _ dependencies: [String: [String]]) -> [String]? {
        var state: [String: Bool] = [:]  // false: on the stack; true: done
        var stack: [String] = []
        func visit(_ name: String) -> [String]? {
            if state[name] == true { return nil }
            if state[name] == false {
                let loop = Array(stack[stack.lastIndex(of: name)!...])
                let start = loop.indices.min { loop[$0] < loop[$1] }!
                let rotated = Array(loop[start...] + loop[..<start])
                return rotated + [rotated[0]]
            }
            state[name] = false
            stack.append(name)
            for dependency in dependencies[name] ?? [] {
                if let found = visit(dependency) { return found }
            }
            stack.removeLast()
            state[name] = true
            return nil
        }
        for name in names.sorted() {
            if let found = visit(name) { return found }
        }
        return nil
    }
}

/// What a plan does with one image.
public enum Decision: Sendable, Equatable {
    case build(Reason)
    /// The image published for the same inputs (or, with `--since`, the image tag) is used.
    case reuse(Digest, Reason)

    public enum Reason: Sendable, Equatable {
        /// Built `FROM` these images, which build in this plan.
        case dependencies([String])
        /// With `--since`: files of the image's directory changed in the git range.
        case changedFiles([String])
        /// No image is published under its inputs digest.
        case notPublished(Digest)
        /// Published under its inputs digest.
        case published(Digest)
        /// With `--since`: no file of its directory changed since the revision.
        case unchangedSince(String)
        /// A reference it needs is not in the registry (an in-graph base's tag, or, with
        /// `--since`, the image's own tag).
        case missing(String)
    }
}

/// One line of a plan.
public struct PlannedImage: Sendable, Equatable {
    public var image: GraphImage
    public var decision: Decision

    public init(image: GraphImage, decision: Decision) {
        self.image = image
        self.decision = decision
    }

    public var builds: Bool {
        if case .build = decision { return true }
        return false
    }

    /// `build <name> (<reason>)` or `reuse <name> <digest> (<reason>)`.
    public var line: String {
        switch decision {
        case .build(let reason): "build \(image.name) (\(Self.describe(reason)))"
        case .reuse(let digest, let reason): "reuse \(image.name) \(digest) (\(Self.describe(reason)))"
        }
    }

    static func describe(_ reason: Decision.Reason) -> String {
        switch reason {
        case .dependencies(let names):
            "because \(names.joined(separator: ", ")) " + (names.count == 1 ? "changes" : "change")
        case .changedFiles(let files):
            "changed files: " + files.prefix(3).joined(separator: ", ")
                + (files.count > 3 ? " and \(files.count - 3) more" : "")
        case .notPublished(let inputs):
            "not published: no \(PublishedImages.describe(inputs))"
        case .published(let inputs):
            "published as \(PublishedImages.describe(inputs))"
        case .unchangedSince(let revision):
            "no changed files since \(revision)"
        case .missing(let reference):
            "\(reference) is not in the registry"
        }
    }
}

extension ErrorKind where Owner == ImageGraph.Failure {
    /// The images of a build-all do not form a graph (a cycle, a missing image).
    public static var invalidGraph: Self { Self("invalid graph") }
}
