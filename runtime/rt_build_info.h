/* rt_build_info.h: what this build of the runtime contains and which devices it sees,
 * for --version of the command-line tools. */
#ifndef RT_BUILD_INFO_H
#define RT_BUILD_INFO_H

#include <stdio.h>

#define INFD_VERSION "0.1.0"

/* Prints version, compiled backends and visible CUDA devices, one fact per line. */
void rt_build_info_print(FILE *f, const char *program);

#endif
