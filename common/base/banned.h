/*
 * banned.h - functions the house style forbids, enforced by the compiler.
 * Include it last in every .c file: the poison applies to what follows.
 */
#ifndef KASCADE_COMMON_BASE_BANNED_H
#define KASCADE_COMMON_BASE_BANNED_H

#pragma GCC poison strcpy strcat sprintf vsprintf gets strtok atoi atol atof
#pragma GCC poison strerror localtime gmtime signal

#endif
