"""The HTML browse site: pages, feed and static files planned with the rest of a build."""

from appshelf.site.generator import SiteOptions, generate_site, site_generator

__all__ = ["SiteOptions", "generate_site", "site_generator"]
