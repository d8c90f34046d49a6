"""The nightly refresh: ledger, releases, Common Crawl listing, prior-release index builds."""
