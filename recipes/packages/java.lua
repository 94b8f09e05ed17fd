-- The headless Java runtime (OpenJDK) from Debian: `engitor load java -a app.jar`, or a class
-- with args = {"-cp", "/app", "Main"}.
package "java" {
  description = "OpenJDK headless Java runtime",
  -- ca-certificates: engitor builds Java's trust store (lib/security/cacerts) from it.
  debs = {"openjdk-17-jre-headless", "ca-certificates"},
  -- /usr/bin/java is made by update-alternatives in a maintainer script; none runs here.
  program = "/usr/lib/jvm/java-*-openjdk-amd64/bin/java",
  -- Only an installed system uses these: java-common runs update-java-alternatives, and
  -- ca-certificates-java builds the trust store by running Java in its maintainer script
  -- (engitor writes the same store itself).
  skip = {"ca-certificates-java", "java-common"},
  -- The class-data archive for heaps over 32 GB (compressed oops off); the one for normal heaps
  -- stays.
  drop = {"/usr/lib/jvm/*/lib/server/classes_nocoops.jsa"},
  suffixes = {".jar"},
  memory = "768M",
}
