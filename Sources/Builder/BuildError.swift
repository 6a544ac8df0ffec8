import Errors

/// Why build-task could not build: the kind says what went wrong (a base that is missing, a
/// file that cannot be read, a Dockerfile the chosen builder cannot build), the message says
/// with which value and what to do, in one line.
public typealias BuildError = KindedError<BuildErrorDomain>

/// Whose kinds ``BuildError``'s are.
public enum BuildErrorDomain {}

extension ErrorKind where Owner == BuildErrorDomain {
    /// The build asks for something Slipway does not do (a base per platform, an image
    /// argument in a form it does not read, an inputs digest no tag can hold).
    public static var unsupported: Self { Self("unsupported") }
    /// The chosen builder cannot build this Dockerfile (`BUILDER=assemble` and a `RUN`).
    public static var notAssemblable: Self { Self("not assemblable") }
    /// The assembler could not apply an instruction (a `COPY` source outside the context).
    public static var assemblyFailed: Self { Self("assembly failed") }
    /// This container cannot run buildah as the build needs (no namespaces, no emulator).
    public static var hostCannotBuild: Self { Self("host cannot build") }
    /// A base image, or an image argument's image, does not exist.
    public static var missingBase: Self { Self("missing base") }
    /// A base image could not be resolved to a digest (no access, no pinned digest).
    public static var unresolvedBase: Self { Self("unresolved base") }
    /// A `FROM` line or the Dockerfile cannot be parsed.
    public static var invalidDockerfile: Self { Self("invalid Dockerfile") }
    /// A file the build reads (the Dockerfile, a CA bundle, a context file) cannot be read.
    public static var unreadableFile: Self { Self("unreadable file") }
    /// A file or directory the build writes cannot be created.
    public static var unwritableFile: Self { Self("unwritable file") }
    /// The run's private directory cannot be made, or would be inside the context.
    public static var privateDirectory: Self { Self("private directory") }
    /// An output would hold the value of a secret, so it is not written.
    public static var secretInOutput: Self { Self("secret in output") }
}
