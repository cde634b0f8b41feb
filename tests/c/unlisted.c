/* Makes the library return a code its documentation does not list (a test-hooks build
 * only): the build's code check must abort the process. */
#include "check.h"

int main(void) {
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  pgpool_config_set_application_name(cfg, "pgpool-test-unlisted-code", &err);
  printf("NOT ABORTED\n");
  return 0;
}
