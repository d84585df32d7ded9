// SPDX-License-Identifier: GPL-2.0
/*
 * kh-loop N: executes a loop of exactly 2 * N user-space instructions (decrement, branch)
 * and exits. The smoke run counts `instructions:u` of kh-loop 0 and kh-loop N: their
 * difference is the loop, 2 * N, whatever the process start-up costs.
 */
#include <stdlib.h>

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 0) : 0;

#if defined(__aarch64__)
	asm volatile("cbz %0, 2f\n"
		     "1: subs %0, %0, #1\n"
		     "b.ne 1b\n"
		     "2:" : "+r"(n) : : "cc");
#elif defined(__x86_64__)
	asm volatile("test %0, %0\n"
		     "jz 2f\n"
		     "1: dec %0\n"
		     "jnz 1b\n"
		     "2:" : "+r"(n) : : "cc");
#else
#error "kh-loop: no loop for this architecture"
#endif
	return (int)n;
}
