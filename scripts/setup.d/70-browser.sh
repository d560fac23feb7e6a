# The dashboard's browser test (crates/cachet-server/tests/server/ui.rs): Debian's chromium,
# driven headless over WebDriver by chromedriver. Nothing is downloaded at test time.
apt_install chromium chromium-driver
export CACHET_TEST_CHROMEDRIVER=/usr/bin/chromedriver
