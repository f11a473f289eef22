# Install rules (FHS) and the Debian package (CPack DEB). Included once from the top-level
# CMakeLists.txt. `cmake --install build --prefix /usr` (or `make deb`) puts:
#   bin/elasticproxy                           the binary (installed by src/app)
#   lib/systemd/system/elasticproxy.service    the hardened Type=notify unit
#   <sysconf>/elasticproxy/elasticproxy.yaml   the example configuration (conffile) and web.json
#   share/man/man8/elasticproxy.8.gz           the manual page
#   share/doc/elasticproxy/                    README, docs, examples, haproxy.cfg example
# <sysconf> is /etc for the /usr prefix (GNUInstallDirs' rule), <prefix>/etc otherwise.

include(GNUInstallDirs)

set(EP_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)

# The unit hard-codes /usr/bin/elasticproxy: right for the package (prefix /usr); for another
# prefix, the unit is rewritten to that prefix's binary.
set(EP_UNIT_FILE ${PROJECT_BINARY_DIR}/packaging/elasticproxy.service)
file(READ ${EP_PACKAGING_DIR}/elasticproxy.service EP_UNIT_TEXT)
string(REPLACE "/usr/bin/elasticproxy" "${CMAKE_INSTALL_FULL_BINDIR}/elasticproxy" EP_UNIT_TEXT
       "${EP_UNIT_TEXT}")
string(REPLACE "/etc/elasticproxy/" "${CMAKE_INSTALL_FULL_SYSCONFDIR}/elasticproxy/" EP_UNIT_TEXT
       "${EP_UNIT_TEXT}")
file(WRITE ${EP_UNIT_FILE} "${EP_UNIT_TEXT}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${EP_PACKAGING_DIR}/elasticproxy.service)

# Man pages are shipped gzip-compressed (Debian policy 12.1); -n keeps the build reproducible.
find_program(EP_GZIP gzip REQUIRED)
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/packaging/elasticproxy.8.gz
  COMMAND ${EP_GZIP} -9 -n -c ${EP_PACKAGING_DIR}/elasticproxy.8 > ${PROJECT_BINARY_DIR}/packaging/elasticproxy.8.gz
  DEPENDS ${EP_PACKAGING_DIR}/elasticproxy.8
  COMMENT "Compressing the man page")
add_custom_target(ep_manpage ALL DEPENDS ${PROJECT_BINARY_DIR}/packaging/elasticproxy.8.gz)

install(FILES ${EP_UNIT_FILE} DESTINATION lib/systemd/system)
install(FILES ${PROJECT_BINARY_DIR}/packaging/elasticproxy.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${EP_PACKAGING_DIR}/elasticproxy.yaml ${EP_PACKAGING_DIR}/web.json
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/elasticproxy)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${EP_PACKAGING_DIR}/haproxy.cfg.example DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# ---- CPack: Debian package -------------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "elasticproxy")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "ElasticProxy maintainers <elasticproxy@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "keeps HAProxy backend servers equal to service discovery, without reloads")
set(CPACK_PACKAGE_DESCRIPTION
    "ElasticProxy watches service discovery sources and keeps HAProxy's backend servers equal to\n\
what they say is alive, through HAProxy's runtime API: no reload, no dropped request, and never\n\
an emptied backend because discovery failed.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Depends: exactly the shared libraries the binary links, as dpkg-shlibdeps computes them.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The maintainer scripts use groupadd/useradd/usermod (package passwd, priority required).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "haproxy")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${EP_PACKAGING_DIR}/postinst ${EP_PACKAGING_DIR}/prerm ${EP_PACKAGING_DIR}/postrm
    ${EP_PACKAGING_DIR}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_BINARY_DIR}/deb)
include(CPack)
