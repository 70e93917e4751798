# cmake -DIN=file -DOUT=file.c -P embed_file.cmake: the bytes of IN as the C array srv_web_index (and its length),
# so that the server's web page is part of the binary (nothing to install).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp" "/* generated from ${IN} by src/server/embed_file.cmake */\n#include <stddef.h>\n"
     "const unsigned char srv_web_index[] = {\n${body}0x00};\nconst size_t srv_web_index_len = ${bytes};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
