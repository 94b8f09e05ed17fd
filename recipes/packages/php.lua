-- PHP's command line (and built-in web server: php -S) from Debian.
package "php" {
  description = "PHP command line interpreter and built-in web server",
  -- ca-certificates: the trust store, so HTTPS clients in the guest verify servers.
  debs = {"php-cli", "ca-certificates"},
  program = "/usr/bin/php[0-9].[0-9]",
  -- Debian's maintainer scripts would copy the production php.ini and enable the bundled
  -- extensions (ctype, iconv, tokenizer, opcache, …) through conf.d links; none runs here, so
  -- point PHP at the same files directly.
  args = {"-c", "/usr/lib/php/8.2/php.ini-production.cli"},
  env = { PHP_INI_SCAN_DIR = "/usr/share/php8.2-common/common:/usr/share/php8.2-opcache/opcache"
                             .. ":/usr/share/php8.2-readline/readline" },
  suffixes = {".php"},
}
